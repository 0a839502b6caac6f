"""The rules for application credentials, credentials (blobs such as ec2 key pairs) and the OS-EC2 view
of them. Every function takes an open Session; the caller owns the transaction."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.core.db import new_id
from tinystack.identity import roles
from tinystack.identity.lookup import get_or_404
from tinystack.identity.models import ApplicationCredential, Credential, Project, Role, User
from tinystack.identity.policies import ADMIN

EC2 = "ec2"
CREDENTIAL_OWNER = ADMIN + " or user_id:%(target.credential.user_id)s"
# Blob keys that bind an ec2 credential to a delegation: an update must not change or drop them.
_BOUND_KEYS = ("trust_id", "app_cred_id", "access_token_id", "access_id")
_CREDENTIAL_COLUMNS = ("id", "user_id", "project_id", "type", "blob", "links")


def generate_secret() -> str:
    """A url-safe secret with 512 random bits, as Keystone generates for application credentials."""
    return base64.urlsafe_b64encode(secrets.token_bytes(64)).rstrip(b"=").decode()


def ec2_id(access: str) -> str:
    """An ec2 credential's id is the sha256 of its access key, so the key finds it without a scan."""
    return hashlib.sha256(access.encode()).hexdigest()


def _flush(s: Session, conflict: str) -> None:
    # A concurrent writer can win the race the explicit checks lost; that is still a 409, not a 500.
    try:
        s.flush()
    except IntegrityError:
        raise errors.Conflict(conflict) from None


# --- delegation limits ---------------------------------------------------------------------------


def forbid_restricted(s: Session, ctx: RequestContext, what: str) -> None:
    """A token from a restricted application credential may not mint further long-lived secrets."""
    if ctx.application_credential_id is None:
        return
    cred = s.get(ApplicationCredential, ctx.application_credential_id)
    if cred is None or not cred.unrestricted:
        raise errors.Forbidden(f"Using method 'application_credential' is not allowed for managing additional {what}.")


def check_delegated_project(ctx: RequestContext, project_id: str | None) -> None:
    """A delegated (application credential) token reaches only credentials of the project it is bound to."""
    if ctx.application_credential_id is not None and project_id != ctx.project_id:
        raise errors.Forbidden("Credential project does not match the project scope of the delegated token.")


def visible_to_delegation(ctx: RequestContext, cred: Credential) -> bool:
    return ctx.application_credential_id is None or cred.project_id == ctx.project_id


# --- application credentials ---------------------------------------------------------------------


def resolve_roles(s: Session, specs: Sequence[dict[str, str]] | None, token_role_ids: Sequence[str]) -> list[str]:
    """The role ids an application credential gets: the requested ones plus what they imply, which must all
    be roles of the caller's token; no request means every role of the token."""
    if not specs:
        return list(token_role_ids)
    wanted: list[str] = []
    for spec in specs:
        if "id" in spec:
            wanted.append(spec["id"])
            continue
        role_id = s.scalar(select(Role.id).where(Role.name == spec["name"], Role.domain_id == ""))
        if role_id is None:
            raise errors.NotFound(f"Could not find role: {spec['name']}.")
        wanted.append(role_id)
    expanded = roles.expand_implied(s, wanted)
    held = set(token_role_ids)
    if any(rid not in held for rid in expanded):
        raise errors.BadRequest("Invalid application credential: Cannot create an application credential with unassigned role.")
    return expanded


def parse_expiry(expires_at: float | None) -> float | None:
    if expires_at is not None and expires_at <= time.time():
        raise errors.BadRequest("The 'expires_at' must not be before now.")
    return expires_at


def ensure_app_cred_name_free(s: Session, user_id: str, name: str) -> None:
    taken = s.scalar(select(ApplicationCredential.id).where(ApplicationCredential.user_id == user_id,
                                                            ApplicationCredential.name == name))
    if taken is not None:
        raise errors.Conflict(_duplicate_app_cred(name))


def _duplicate_app_cred(name: str) -> str:
    return f"Conflict occurred attempting to store application_credential - Duplicate entry found with name {name}."


def create_app_cred(s: Session, *, user_id: str, project_id: str, name: str, secret_hash: str, description: str,
                    expires_at: float | None, unrestricted: bool, role_ids: list[str]) -> ApplicationCredential:
    ensure_app_cred_name_free(s, user_id, name)
    cred = ApplicationCredential(id=new_id(), name=name, user_id=user_id, project_id=project_id,
                                 secret_hash=secret_hash, description=description, expires_at=expires_at,
                                 unrestricted=unrestricted, role_ids=role_ids)
    s.add(cred)
    _flush(s, _duplicate_app_cred(name))
    return cred


def list_app_creds(s: Session, user_id: str, name: str | None = None) -> list[ApplicationCredential]:
    q = select(ApplicationCredential).where(ApplicationCredential.user_id == user_id)
    if name is not None:
        q = q.where(ApplicationCredential.name == name)
    return list(s.scalars(q.order_by(ApplicationCredential.name, ApplicationCredential.id)))


def find_app_cred(s: Session, cred_id: str) -> ApplicationCredential | None:
    return s.get(ApplicationCredential, cred_id)


def app_cred_roles(s: Session, cred: ApplicationCredential) -> list[Role]:
    if not cred.role_ids:
        return []
    found = {r.id: r for r in s.scalars(select(Role).where(Role.id.in_(cred.role_ids)))}
    return [found[rid] for rid in cred.role_ids if rid in found]


# --- credentials ---------------------------------------------------------------------------------


def parse_ec2_blob(blob: str) -> dict[str, Any]:
    try:
        data = json.loads(blob)
    except ValueError:
        raise errors.BadRequest("Invalid blob in credential: not a JSON document.") from None
    if not isinstance(data, dict) or not data:
        raise errors.BadRequest("Invalid blob in credential: an ec2 blob is a JSON object with access and secret.")
    if data.get("access") is None:
        raise errors.BadRequest("Expecting to find access in credential blob.")
    return data


def _loads(blob: str) -> dict[str, Any]:
    try:
        data = json.loads(blob)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _require_user(s: Session, user_id: str) -> None:
    if s.get(User, user_id) is None:
        raise errors.BadRequest(f"Could not find user: {user_id}.")


def _require_project(s: Session, project_id: str | None) -> None:
    if project_id is not None and s.get(Project, project_id) is None:
        raise errors.BadRequest(f"Could not find project: {project_id}.")


def _extras(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in _CREDENTIAL_COLUMNS}


def create_credential(s: Session, body: dict[str, Any], app_cred_id: str | None = None) -> Credential:
    blob: str = body["blob"]
    if body["type"].lower() == EC2:
        data = parse_ec2_blob(blob)
        if app_cred_id is not None:
            # ec2 tokens made from this credential stay bound to the application credential's limits.
            data["app_cred_id"] = app_cred_id
            blob = json.dumps(data)
        cred_id = ec2_id(str(data["access"]))
    else:
        cred_id = new_id()
    _require_user(s, body["user_id"])
    _require_project(s, body.get("project_id"))
    if s.get(Credential, cred_id) is not None:
        raise errors.Conflict(f"Conflict occurred attempting to store credential - Duplicate ID, {cred_id}.")
    cred = Credential(id=cred_id, user_id=body["user_id"], project_id=body.get("project_id"), type=body["type"],
                      blob=blob, extra=_extras(body))
    s.add(cred)
    _flush(s, f"Conflict occurred attempting to store credential - Duplicate ID, {cred_id}.")
    return cred


def update_credential(s: Session, cred: Credential, changes: dict[str, Any]) -> Credential:
    """Apply a PATCH; the caller has already checked the caller may own the result."""
    if "id" in changes and changes["id"] != cred.id:
        raise errors.BadRequest("Cannot change the ID of a credential.")
    if cred.type.lower() == EC2 and "blob" in changes:
        old, new = _loads(cred.blob), parse_ec2_blob(changes["blob"])
        for key in _BOUND_KEYS:
            if old.get(key) != new.get(key):
                raise errors.BadRequest(f"{key} can not be updated for credential.")
    kind = changes.get("type", cred.type)
    if kind.lower() == EC2:
        parse_ec2_blob(changes.get("blob", cred.blob))
        if kind == EC2 and changes.get("project_id", cred.project_id) is None:
            raise errors.BadRequest("An ec2 credential requires a project_id.")
    if "user_id" in changes:
        _require_user(s, changes["user_id"])
    if "project_id" in changes:
        _require_project(s, changes["project_id"])
    for column in ("user_id", "project_id", "type", "blob"):
        if column in changes:
            setattr(cred, column, changes[column])
    extra = _extras(changes)
    if extra:
        cred.extra = {**cred.extra, **extra}
    return cred


def list_credentials(s: Session, user_id: str | None = None, kind: str | None = None) -> list[Credential]:
    q = select(Credential)
    if user_id is not None:
        q = q.where(Credential.user_id == user_id)
    if kind is not None:
        q = q.where(Credential.type == kind)
    return list(s.scalars(q.order_by(Credential.id)))


def find_credential(s: Session, cred_id: str) -> Credential | None:
    return s.get(Credential, cred_id)


# --- OS-EC2 --------------------------------------------------------------------------------------


def create_ec2(s: Session, user_id: str, project_id: str, app_cred_id: str | None = None) -> Credential:
    get_or_404(s, User, user_id, "user")
    get_or_404(s, Project, project_id, "project")
    blob: dict[str, Any] = {"access": new_id(), "secret": new_id(), "trust_id": None}
    if app_cred_id is not None:
        blob["app_cred_id"] = app_cred_id
    cred = Credential(id=ec2_id(blob["access"]), user_id=user_id, project_id=project_id, type=EC2,
                      blob=json.dumps(blob), extra={})
    s.add(cred)
    _flush(s, "Conflict occurred attempting to store credential - Duplicate ID.")
    return cred


def list_ec2(s: Session, user_id: str) -> list[Credential]:
    get_or_404(s, User, user_id, "user")
    return list_credentials(s, user_id, EC2)


def find_ec2(s: Session, user_id: str, access: str) -> Credential:
    """The user's ec2 credential for ``access``; another user's key is as unknown as a missing one."""
    get_or_404(s, User, user_id, "user")
    cred = s.get(Credential, ec2_id(access))
    if cred is None or cred.type != EC2 or cred.user_id != user_id:
        raise errors.NotFound(f"Could not find credential: {ec2_id(access)}.")
    return cred


def ec2_fields(cred: Credential) -> dict[str, Any]:
    blob = _loads(cred.blob)
    return {"user_id": cred.user_id, "tenant_id": cred.project_id, "access": blob.get("access"),
            "secret": blob.get("secret"), "trust_id": blob.get("trust_id")}
