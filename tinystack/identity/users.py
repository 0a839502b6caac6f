"""Keystone's rules for users and groups (with memberships): functions over a Session that raise
tinystack.core.errors and never see HTTP. Token revocations are recorded only after every check passed."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.core.db import new_id
from tinystack.identity import password_rules
from tinystack.identity.models import ApplicationCredential as AppCred
from tinystack.identity.models import Assignment, Credential, Domain, Group, Membership, PasswordHistory, Project, Trust, User
from tinystack.identity.resource_common import extra, flush, get_domain, get_group, get_user, match, merged_options
from tinystack.identity.tokens import TokenService

USER_ASSIGNMENTS = ("UserProject", "UserDomain", "UserSystem")
GROUP_ASSIGNMENTS = ("GroupProject", "GroupDomain", "GroupSystem")

_USER_FIELDS = frozenset({"name", "domain_id", "default_project_id", "description", "enabled", "password", "options",
                          "federated", "password_expires_at"})
_GROUP_FIELDS = frozenset({"name", "domain_id", "description"})


def _duplicate(kind: str, name: str, domain_id: str) -> str:
    return f"Conflict occurred attempting to store {kind} - Duplicate entry found with name {name} at domain ID {domain_id}."


# --- users ---------------------------------------------------------------------------------------


def _default_project(s: Session, project_id: str | None) -> None:
    # Keystone accepts a default project that does not exist, but never a domain.
    if project_id and s.get(Project, project_id) is None and s.get(Domain, project_id) is not None:
        raise errors.BadRequest(f"User's default project ID cannot be a domain ID: {project_id}")


def create_user(s: Session, body: Mapping[str, Any], domain_id: str, password_hash: str | None,
                password_expires_at: float | None = None) -> User:
    name = body["name"].strip()
    get_domain(s, domain_id)
    if body.get("federated"):
        raise errors.NotImplementedYet("Federated users are not supported.")
    _default_project(s, body.get("default_project_id"))
    if s.scalar(select(User.id).where(User.domain_id == domain_id, User.name == name)):
        raise errors.Conflict(_duplicate("user", name, domain_id))
    user = User(id=new_id(), name=name, domain_id=domain_id, enabled=body.get("enabled", True),
                password_hash=password_hash, password_changed_at=time.time() if password_hash else None,
                password_expires_at=password_expires_at if password_hash else None,
                default_project_id=body.get("default_project_id"), description=body.get("description") or "",
                options=merged_options({}, body.get("options")), extra=extra(body, _USER_FIELDS))
    s.add(user)
    flush(s, _duplicate("user", name, domain_id))
    if password_hash:
        password_rules.record(s, user.id, password_hash, self_service=False)
    return user


def update_user(s: Session, tokens: TokenService, user_id: str, body: Mapping[str, Any],
                password_hash: str | None = None, password_expires_at: float | None = None) -> User:
    """Apply a PATCH; ``password_hash`` is the already hashed ``body["password"]``, which expires at
    ``password_expires_at``."""
    user = get_user(s, user_id)
    if "domain_id" in body and body["domain_id"] != user.domain_id:
        raise errors.BadRequest("Cannot change Domain ID")
    if body.get("federated"):
        raise errors.NotImplementedYet("Federated users are not supported.")
    _default_project(s, body.get("default_project_id"))
    if "name" in body:
        name = body["name"].strip()
        if s.scalar(select(User.id).where(User.domain_id == user.domain_id, User.name == name, User.id != user.id)):
            raise errors.Conflict(_duplicate("user", name, user.domain_id))
        user.name = name
    revoke = (body.get("enabled") is False and user.enabled) or body.get("password") is not None
    if "enabled" in body:
        if body["enabled"] and not user.enabled:
            user.failed_auth_count, user.failed_auth_at = 0, None
        user.enabled = body["enabled"]
    if "password" in body:
        user.password_hash = password_hash
        user.password_changed_at = time.time() if password_hash else None
        user.password_expires_at = password_expires_at if password_hash else None
        user.failed_auth_count, user.failed_auth_at = 0, None
        if password_hash:
            password_rules.record(s, user.id, password_hash, self_service=False)
    if "description" in body:
        user.description = body["description"] or ""
    if "default_project_id" in body:
        user.default_project_id = body["default_project_id"]
    if "options" in body:
        user.options = merged_options(user.options, body["options"])
    user.extra = extra(body, _USER_FIELDS, user.extra)
    flush(s, _duplicate("user", user.name, user.domain_id))
    if revoke:
        tokens.revoke(s, user_id=user.id)
    return user


def change_password(s: Session, tokens: TokenService, user_id: str, checked_hash: str | None, new_hash: str,
                    expires_at: float | None = None) -> None:
    """Self-service change; ``checked_hash`` is the hash the original password was verified against."""
    user = s.get(User, user_id)
    if user is None or user.password_hash != checked_hash:
        raise errors.Unauthorized("Error when changing user password: Invalid user / password")
    if user.options.get("lock_password"):
        raise errors.BadRequest("You cannot change your password at this time due to password policy disallowing "
                                "password changes. Please contact your administrator to reset your password.")
    user.password_hash = new_hash
    user.password_changed_at = time.time()
    user.password_expires_at = expires_at
    user.failed_auth_count, user.failed_auth_at = 0, None
    password_rules.record(s, user.id, new_hash, self_service=True)
    tokens.revoke(s, user_id=user.id)


def delete_user(s: Session, tokens: TokenService, user_id: str) -> None:
    get_user(s, user_id)
    purge_users(s, [user_id])
    tokens.revoke(s, user_id=user_id)


def list_users(s: Session, *, name: str | None = None, domain_id: str | None = None, enabled: bool | None = None,
               group_id: str | None = None) -> list[User]:
    q = select(User)
    if group_id is not None:
        q = q.join(Membership, Membership.user_id == User.id).where(Membership.group_id == group_id)
    q = match(q, (User.name, name), (User.domain_id, domain_id), (User.enabled, enabled))
    return list(s.scalars(q.order_by(User.name, User.id)))


def purge_users(s: Session, ids: list[str]) -> None:
    if not ids:
        return
    s.execute(delete(Assignment).where(Assignment.actor_id.in_(ids), Assignment.type.in_(USER_ASSIGNMENTS)))
    s.execute(delete(Membership).where(Membership.user_id.in_(ids)))
    s.execute(delete(AppCred).where(AppCred.user_id.in_(ids)))
    s.execute(delete(Credential).where(Credential.user_id.in_(ids)))
    s.execute(delete(PasswordHistory).where(PasswordHistory.user_id.in_(ids)))
    s.execute(delete(Trust).where(Trust.trustor_user_id.in_(ids) | Trust.trustee_user_id.in_(ids)))
    s.execute(delete(User).where(User.id.in_(ids)))


# --- groups --------------------------------------------------------------------------------------


def create_group(s: Session, body: Mapping[str, Any], domain_id: str) -> Group:
    name = body["name"].strip()
    get_domain(s, domain_id)
    if s.scalar(select(Group.id).where(Group.domain_id == domain_id, Group.name == name)):
        raise errors.Conflict(_duplicate("group", name, domain_id))
    group = Group(id=new_id(), name=name, domain_id=domain_id, description=body.get("description") or "",
                  extra=extra(body, _GROUP_FIELDS))
    s.add(group)
    flush(s, _duplicate("group", name, domain_id))
    return group


def update_group(s: Session, group_id: str, body: Mapping[str, Any]) -> Group:
    group = get_group(s, group_id)
    if "domain_id" in body and body["domain_id"] != group.domain_id:
        raise errors.BadRequest("Cannot change Domain ID")
    if "name" in body:
        name = body["name"].strip()
        if s.scalar(select(Group.id).where(Group.domain_id == group.domain_id, Group.name == name,
                                           Group.id != group.id)):
            raise errors.Conflict(_duplicate("group", name, group.domain_id))
        group.name = name
    if "description" in body:
        group.description = body["description"] or ""
    group.extra = extra(body, _GROUP_FIELDS, group.extra)
    flush(s, _duplicate("group", group.name, group.domain_id))
    return group


def delete_group(s: Session, tokens: TokenService, group_id: str) -> None:
    """Delete a group; as in Keystone, members' tokens are revoked when the group held any role."""
    get_group(s, group_id)
    members = list(s.scalars(select(Membership.user_id).where(Membership.group_id == group_id)))
    had_roles = s.scalar(select(Assignment.role_id).where(Assignment.actor_id == group_id,
                                                          Assignment.type.in_(GROUP_ASSIGNMENTS)).limit(1))
    purge_groups(s, [group_id])
    if had_roles:
        for user_id in members:
            tokens.revoke(s, user_id=user_id)


def list_groups(s: Session, *, name: str | None = None, domain_id: str | None = None,
                user_id: str | None = None) -> list[Group]:
    q = select(Group)
    if user_id is not None:
        q = q.join(Membership, Membership.group_id == Group.id).where(Membership.user_id == user_id)
    q = match(q, (Group.name, name), (Group.domain_id, domain_id))
    return list(s.scalars(q.order_by(Group.name, Group.id)))


def add_member(s: Session, group_id: str, user_id: str) -> None:
    get_group(s, group_id)
    get_user(s, user_id)
    if s.get(Membership, (user_id, group_id)) is None:
        s.add(Membership(user_id=user_id, group_id=group_id))


def check_member(s: Session, group_id: str, user_id: str) -> Membership:
    get_group(s, group_id)
    get_user(s, user_id)
    membership = s.get(Membership, (user_id, group_id))
    if membership is None:
        raise errors.NotFound(f"User '{user_id}' not found in group '{group_id}'")
    return membership


def remove_member(s: Session, tokens: TokenService, group_id: str, user_id: str) -> None:
    """Remove a membership; as in Keystone, the user's tokens are revoked (they may carry the group's roles)."""
    s.delete(check_member(s, group_id, user_id))
    tokens.revoke(s, user_id=user_id)


def purge_groups(s: Session, ids: list[str]) -> None:
    if not ids:
        return
    s.execute(delete(Assignment).where(Assignment.actor_id.in_(ids), Assignment.type.in_(GROUP_ASSIGNMENTS)))
    s.execute(delete(Membership).where(Membership.group_id.in_(ids)))
    s.execute(delete(Group).where(Group.id.in_(ids)))
