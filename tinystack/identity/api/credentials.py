"""``/v3/users/{user_id}/application_credentials``, ``/v3/credentials`` and the OS-EC2 extension
``/v3/users/{user_id}/credentials/OS-EC2``."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.core.web import Route, ctx, empty, json_response, read_json
from tinystack.identity import credential_schemas as schemas
from tinystack.identity import credentials, views
from tinystack.identity.api.common import base_url
from tinystack.identity.models import ApplicationCredential, Credential
from tinystack.identity.passwords import hash_secret
from tinystack.identity.service import IdentityService
from tinystack.identity.timeutil import parse

APP_CREDS = "application credentials"


def _owner(user_id: str) -> dict[str, str]:
    return {"target.credential.user_id": user_id}


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

    # --- application credentials -----------------------------------------------------------------

    def _app_cred_view(self, request: web.Request, s: Session, cred: ApplicationCredential,
                       secret: str | None = None) -> dict[str, Any]:
        return views.app_credential(base_url(request), cred, credentials.app_cred_roles(s, cred), secret)

    async def create_app_cred(self, request: web.Request) -> web.Response:
        c = ctx(request)
        user_id = request.match_info["user_id"]
        self.svc.enforce(c, "identity:create_application_credential", {"user_id": user_id})
        body = (await read_json(request, schemas.APP_CRED_CREATE))["application_credential"]
        if c.user_id != user_id:
            raise errors.Forbidden("Cannot create an application credential for another user.")
        if c.project_id is None:
            raise errors.Forbidden("Application credentials can only be created with a project-scoped token.")
        if body.get("access_rules"):
            raise errors.BadRequest("Invalid application credential: access rules are not supported.")
        expires_at = credentials.parse_expiry(parse(body.get("expires_at") or None))
        with self.svc.read() as s:
            credentials.forbid_restricted(s, c, APP_CREDS)
            role_ids = credentials.resolve_roles(s, body.get("roles"), c.role_ids)
            credentials.ensure_app_cred_name_free(s, user_id, body["name"])
        secret = body.get("secret") or credentials.generate_secret()
        secret_hash = await asyncio.to_thread(hash_secret, secret, self.svc.hash_rounds)
        with self.svc.write() as s:
            cred = credentials.create_app_cred(
                s, user_id=user_id, project_id=c.project_id, name=body["name"], secret_hash=secret_hash,
                description=body.get("description") or "", expires_at=expires_at,
                unrestricted=bool(body.get("unrestricted")), role_ids=role_ids)
            return json_response({"application_credential": self._app_cred_view(request, s, cred, secret)}, status=201)

    async def list_app_creds(self, request: web.Request) -> web.Response:
        user_id = request.match_info["user_id"]
        self.svc.enforce(ctx(request), "identity:list_application_credentials", {"user_id": user_id})
        with self.svc.read() as s:
            items = [self._app_cred_view(request, s, cred)
                     for cred in credentials.list_app_creds(s, user_id, request.query.get("name"))]
        return json_response(views.collection(base_url(request), f"users/{user_id}/application_credentials",
                                              "application_credentials", items))

    def _load_app_cred(self, request: web.Request, s: Session, rule: str) -> ApplicationCredential:
        user_id, cred_id = request.match_info["user_id"], request.match_info["app_cred_id"]
        cred = credentials.find_app_cred(s, cred_id)
        # Ownership comes from the credential itself, never from the user id the caller put in the path.
        self.svc.enforce(ctx(request), rule, {"user_id": cred.user_id if cred else user_id})
        if cred is None or cred.user_id != user_id:
            raise errors.NotFound(f"Could not find Application Credential: {cred_id}.")
        return cred

    async def get_app_cred(self, request: web.Request) -> web.Response:
        with self.svc.read() as s:
            cred = self._load_app_cred(request, s, "identity:get_application_credential")
            return json_response({"application_credential": self._app_cred_view(request, s, cred)})

    async def delete_app_cred(self, request: web.Request) -> web.Response:
        with self.svc.write() as s:
            cred = self._load_app_cred(request, s, "identity:delete_application_credential")
            credentials.forbid_restricted(s, ctx(request), APP_CREDS)
            s.delete(cred)
        return empty()

    # --- credentials -----------------------------------------------------------------------------

    async def list_credentials(self, request: web.Request) -> web.Response:
        c = ctx(request)
        self.svc.enforce(c, "identity:list_credentials", _owner(c.user_id))
        base = base_url(request)
        with self.svc.read() as s:
            found = credentials.list_credentials(s, request.query.get("user_id"), request.query.get("type"))
            # Non-admins see their own credentials only, and a delegated token only its project's.
            items = [views.credential(base, cred) for cred in found
                     if self.svc.allowed(c, "identity:get_credential", _owner(cred.user_id))
                     and credentials.visible_to_delegation(c, cred)]
        return json_response(views.collection(base, "credentials", "credentials", items))

    async def create_credential(self, request: web.Request) -> web.Response:
        c = ctx(request)
        body = (await read_json(request, schemas.CREDENTIAL_CREATE))["credential"]
        self.svc.enforce(c, "identity:create_credential", _owner(body["user_id"]))
        with self.svc.write() as s:
            if body["type"].lower() == credentials.EC2:
                credentials.forbid_restricted(s, c, "credentials")
            credentials.check_delegated_project(c, body.get("project_id"))
            cred = credentials.create_credential(s, body, c.application_credential_id)
            return json_response({"credential": views.credential(base_url(request), cred)}, status=201)

    def _load_credential(self, request: web.Request, s: Session, rule: str) -> Credential:
        c = ctx(request)
        cred_id = request.match_info["credential_id"]
        cred = credentials.find_credential(s, cred_id)
        self.svc.enforce(c, rule, _owner(cred.user_id) if cred else {})
        if cred is None:
            raise errors.NotFound(f"Could not find credential: {cred_id}.")
        credentials.check_delegated_project(c, cred.project_id)
        return cred

    async def get_credential(self, request: web.Request) -> web.Response:
        with self.svc.read() as s:
            cred = self._load_credential(request, s, "identity:get_credential")
            return json_response({"credential": views.credential(base_url(request), cred)})

    async def update_credential(self, request: web.Request) -> web.Response:
        c = ctx(request)
        changes = (await read_json(request, schemas.CREDENTIAL_UPDATE))["credential"]
        with self.svc.write() as s:
            cred = self._load_credential(request, s, "identity:update_credential")
            # The result must still be the caller's: no handing a credential to someone else.
            self.svc.enforce(c, "identity:update_credential", _owner(changes.get("user_id", cred.user_id)))
            credentials.check_delegated_project(c, changes.get("project_id", cred.project_id))
            credentials.update_credential(s, cred, changes)
            return json_response({"credential": views.credential(base_url(request), cred)})

    async def delete_credential(self, request: web.Request) -> web.Response:
        with self.svc.write() as s:
            s.delete(self._load_credential(request, s, "identity:delete_credential"))
        return empty()

    # --- OS-EC2 ----------------------------------------------------------------------------------

    @staticmethod
    def _ec2_view(request: web.Request, cred: Credential) -> dict[str, Any]:
        out = credentials.ec2_fields(cred)
        out["links"] = {"self": f"{base_url(request)}/v3/users/{cred.user_id}/credentials/OS-EC2/{out['access']}"}
        return out

    async def create_ec2(self, request: web.Request) -> web.Response:
        c = ctx(request)
        user_id = request.match_info["user_id"]
        self.svc.enforce(c, "identity:ec2_create_credential", _owner(user_id))
        body = await read_json(request, schemas.EC2_CREATE)
        with self.svc.write() as s:
            credentials.forbid_restricted(s, c, "credentials")
            credentials.check_delegated_project(c, body["tenant_id"])
            cred = credentials.create_ec2(s, user_id, body["tenant_id"], c.application_credential_id)
            return json_response({"credential": self._ec2_view(request, cred)}, status=201)

    async def list_ec2(self, request: web.Request) -> web.Response:
        c = ctx(request)
        user_id = request.match_info["user_id"]
        self.svc.enforce(c, "identity:ec2_list_credentials", {"user_id": user_id})
        with self.svc.read() as s:
            items = [self._ec2_view(request, cred) for cred in credentials.list_ec2(s, user_id)
                     if credentials.visible_to_delegation(c, cred)]
        return json_response(views.collection(base_url(request), f"users/{user_id}/credentials/OS-EC2",
                                              "credentials", items))

    def _load_ec2(self, request: web.Request, s: Session, rule: str) -> Credential:
        c = ctx(request)
        user_id = request.match_info["user_id"]
        self.svc.enforce(c, rule, _owner(user_id))
        cred = credentials.find_ec2(s, user_id, request.match_info["access"])
        credentials.check_delegated_project(c, cred.project_id)
        return cred

    async def get_ec2(self, request: web.Request) -> web.Response:
        with self.svc.read() as s:
            cred = self._load_ec2(request, s, "identity:ec2_get_credential")
            return json_response({"credential": self._ec2_view(request, cred)})

    async def delete_ec2(self, request: web.Request) -> web.Response:
        with self.svc.write() as s:
            s.delete(self._load_ec2(request, s, "identity:ec2_delete_credential"))
        return empty()


def routes(svc: IdentityService) -> list[Route]:
    return CredentialsAPI(svc).routes()
