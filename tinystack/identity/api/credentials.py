"""``/v3/users/{user_id}/application_credentials``, ``/v3/credentials`` and the OS-EC2 extension
``/v3/users/{user_id}/credentials/OS-EC2``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.core.web import Route, ctx, empty, json_response, read_json
from tinystack.identity import credential_schemas as schemas
from tinystack.identity import credentials, views
from tinystack.identity.api.common import base_url
from tinystack.identity.credential_ops import AppCred
from tinystack.identity.models import Credential
from tinystack.identity.service import IdentityService


class CredentialsAPI:
    def __init__(self, svc: IdentityService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        app_creds = "/v3/users/{user_id}/application_credentials"
        ec2 = "/v3/users/{user_id}/credentials/OS-EC2"
        out = [
            Route("GET", app_creds, self.list_app_creds),
            Route("POST", app_creds, self.create_app_cred),
            Route("GET", app_creds + "/{app_cred_id}", self.get_app_cred),
            Route("DELETE", app_creds + "/{app_cred_id}", self.delete_app_cred),
            Route("GET", "/v3/users/{user_id}/access_rules", self.list_access_rules),
            Route("GET", "/v3/users/{user_id}/access_rules/{rule_id}", self.get_access_rule),
            Route("DELETE", "/v3/users/{user_id}/access_rules/{rule_id}", self.delete_access_rule),
            Route("GET", "/v3/credentials", self.list_credentials),
            Route("POST", "/v3/credentials", self.create_credential),
            Route("GET", "/v3/credentials/{credential_id}", self.get_credential),
            Route("PATCH", "/v3/credentials/{credential_id}", self.update_credential),
            Route("DELETE", "/v3/credentials/{credential_id}", self.delete_credential),
            Route("GET", ec2, self.list_ec2),
            Route("POST", ec2, self.create_ec2),
            Route("GET", ec2 + "/{access}", self.get_ec2),
            Route("DELETE", ec2 + "/{access}", self.delete_ec2),
        ]
        # Keystone answers HEAD wherever it answers GET; aiohttp sends no body for HEAD.
        return out + [Route("HEAD", r.path, r.handler) for r in out if r.method == "GET"]

    # --- access rules ----------------------------------------------------------------------------

    async def list_access_rules(self, request: web.Request) -> web.Response:
        user_id = request.match_info["user_id"]
        filters = {k: request.query.get(k) for k in ("service", "method", "path")}
        found = self.svc.credentials.list_access_rules(ctx(request), user_id, filters)
        base = base_url(request)
        return json_response(views.collection(base, f"users/{user_id}/access_rules", "access_rules",
                                              [views.access_rule(base, r) for r in found]))

    async def get_access_rule(self, request: web.Request) -> web.Response:
        m = request.match_info
        found = self.svc.credentials.get_access_rule(ctx(request), m["user_id"], m["rule_id"])
        return json_response({"access_rule": views.access_rule(base_url(request), found)})

    async def delete_access_rule(self, request: web.Request) -> web.Response:
        m = request.match_info
        await self.svc.credentials.delete_access_rule(ctx(request), m["user_id"], m["rule_id"])
        return empty()

    # --- application credentials -----------------------------------------------------------------

    @staticmethod
    def _app_cred_view(request: web.Request, found: AppCred, secret: str | None = None) -> dict[str, Any]:
        cred, roles, rules = found
        return views.app_credential(base_url(request), cred, roles, secret, rules)

    async def create_app_cred(self, request: web.Request) -> web.Response:
        # The body is checked against its schema after policy, in the service.
        raw = await read_json(request)
        found, secret = await self.svc.credentials.create_app_cred(ctx(request), request.match_info["user_id"], raw)
        return json_response({"application_credential": self._app_cred_view(request, found, secret)}, status=201)

    async def list_app_creds(self, request: web.Request) -> web.Response:
        user_id = request.match_info["user_id"]
        found = self.svc.credentials.list_app_creds(ctx(request), user_id, request.query.get("name"))
        items = [self._app_cred_view(request, one) for one in found]
        return json_response(views.collection(base_url(request), f"users/{user_id}/application_credentials",
                                              "application_credentials", items))

    async def get_app_cred(self, request: web.Request) -> web.Response:
        m = request.match_info
        found = self.svc.credentials.get_app_cred(ctx(request), m["user_id"], m["app_cred_id"])
        return json_response({"application_credential": self._app_cred_view(request, found)})

    async def delete_app_cred(self, request: web.Request) -> web.Response:
        m = request.match_info
        await self.svc.credentials.delete_app_cred(ctx(request), m["user_id"], m["app_cred_id"])
        return empty()

    # --- credentials -----------------------------------------------------------------------------

    async def list_credentials(self, request: web.Request) -> web.Response:
        found = self.svc.credentials.list_credentials(ctx(request), request.query.get("user_id"),
                                                      request.query.get("type"))
        base = base_url(request)
        return json_response(views.collection(base, "credentials", "credentials",
                                              [views.credential(base, cred) for cred in found]))

    async def create_credential(self, request: web.Request) -> web.Response:
        body = (await read_json(request, schemas.CREDENTIAL_CREATE))["credential"]
        cred = await self.svc.credentials.create_credential(ctx(request), body)
        return json_response({"credential": views.credential(base_url(request), cred)}, status=201)

    async def get_credential(self, request: web.Request) -> web.Response:
        cred = self.svc.credentials.get_credential(ctx(request), request.match_info["credential_id"])
        return json_response({"credential": views.credential(base_url(request), cred)})

    async def update_credential(self, request: web.Request) -> web.Response:
        changes = (await read_json(request, schemas.CREDENTIAL_UPDATE))["credential"]
        cred = await self.svc.credentials.update_credential(ctx(request), request.match_info["credential_id"], changes)
        return json_response({"credential": views.credential(base_url(request), cred)})

    async def delete_credential(self, request: web.Request) -> web.Response:
        await self.svc.credentials.delete_credential(ctx(request), request.match_info["credential_id"])
        return empty()

    # --- OS-EC2 ----------------------------------------------------------------------------------

    @staticmethod
    def _ec2_view(request: web.Request, cred: Credential) -> dict[str, Any]:
        out = credentials.ec2_fields(cred)
        out["links"] = {"self": f"{base_url(request)}/v3/users/{cred.user_id}/credentials/OS-EC2/{out['access']}"}
        return out

    async def create_ec2(self, request: web.Request) -> web.Response:
        # The body is checked against its schema after policy, in the service.
        raw = await read_json(request)
        cred = await self.svc.credentials.create_ec2(ctx(request), request.match_info["user_id"], raw)
        return json_response({"credential": self._ec2_view(request, cred)}, status=201)

    async def list_ec2(self, request: web.Request) -> web.Response:
        user_id = request.match_info["user_id"]
        items = [self._ec2_view(request, cred) for cred in self.svc.credentials.list_ec2(ctx(request), user_id)]
        return json_response(views.collection(base_url(request), f"users/{user_id}/credentials/OS-EC2",
                                              "credentials", items))

    async def get_ec2(self, request: web.Request) -> web.Response:
        m = request.match_info
        cred = self.svc.credentials.get_ec2(ctx(request), m["user_id"], m["access"])
        return json_response({"credential": self._ec2_view(request, cred)})

    async def delete_ec2(self, request: web.Request) -> web.Response:
        m = request.match_info
        await self.svc.credentials.delete_ec2(ctx(request), m["user_id"], m["access"])
        return empty()


def routes(svc: IdentityService) -> list[Route]:
    return CredentialsAPI(svc).routes()
