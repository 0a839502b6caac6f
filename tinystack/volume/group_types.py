"""Group types (3.11): admin-managed kinds of generic volume group with group specs; private ones are seen only by
admins. ``[volume] default_group_type`` names the one ``/group_types/default`` answers with (Cinder's
``default_group_type``; none by default, a 404)."""

from __future__ import annotations

import builtins
import re
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.volume.listing import page, parse_sort, sort_rows
from tinystack.volume.models import Group, GroupType
from tinystack.volume.schemas import truthy

if TYPE_CHECKING:
    from tinystack.volume.service import VolumeService

# Cinder's rule for spec keys: letters, digits, underscores, periods, colons and hyphens.
_KEY = re.compile(r"^[\w.:-]+$")


def not_found(ref: str) -> errors.NotFound:
    return errors.NotFound(f"Group type with id {ref} could not be found.")


def check_keys(keys: Any) -> None:
    if not all(isinstance(k, str) and _KEY.match(k) for k in keys):
        raise errors.BadRequest("Key names can only contain alphanumeric characters, underscores, periods, colons "
                                "and hyphens.")


class GroupTypes:
    def __init__(self, svc: VolumeService) -> None:
        self.svc = svc

    def visible(self, ctx: RequestContext, t: GroupType) -> bool:
        return t.is_public or ctx.is_admin

    def resolve(self, s: Session, ctx: RequestContext, ref: str) -> GroupType:
        """A group type by id or name; unknown or not visible is a 404."""
        t = s.get(GroupType, ref) if len(ref) <= 36 else None
        if t is None:
            t = s.scalar(select(GroupType).where(GroupType.name == ref))
        if t is None or not self.visible(ctx, t):
            raise not_found(ref)
        return t

    def list(self, ctx: RequestContext, q: dict[str, str]) -> tuple[builtins.list[GroupType], bool]:
        with self.svc.session() as s:
            # As Cinder: public types unless an admin asks for ``is_public`` false, or "none" for all of them.
            raw = q.get("is_public")
            want = None if ctx.is_admin and raw is not None and raw.lower() == "none" else (
                truthy(raw) if ctx.is_admin and raw is not None else True)
            rows = [t for t in s.scalars(select(GroupType)) if want is None or t.is_public == want]
            pairs = [(k, d) for k, d in parse_sort(q) if k in ("id", "name", "created_at")]
            rows, more = page(sort_rows(rows, pairs), q, self.svc.settings.max_limit)
            for t in rows:
                s.expunge(t)
        return rows, more

    def get(self, ctx: RequestContext, ref: str) -> GroupType:
        with self.svc.session() as s:
            if ref == "default":
                name = self.svc.settings.default_group_type
                t = s.scalar(select(GroupType).where(GroupType.name == name)) if name else None
                if t is None:
                    raise errors.NotFound("Default group type can not be found.")
            else:
                t = self.resolve(s, ctx, ref)
            s.expunge(t)
        return t

    def create(self, ctx: RequestContext, body: dict[str, Any]) -> GroupType:
        self.svc.enforce(ctx, "group:group_types:create")
        name = body["name"].strip()
        if not name:
            raise errors.BadRequest("Group type name can not be empty.")
        specs = dict(body.get("group_specs") or {})
        check_keys(specs)
        with self.svc.session() as s:
            if s.scalar(select(GroupType).where(GroupType.name == name)) is not None:
                raise errors.Conflict(f"Group Type {name} already exists.")
            t = GroupType(id=str(uuid.uuid4()), name=name, description=body.get("description"),
                          is_public=truthy(body.get("is_public", True)), group_specs=specs)
            s.add(t)
            s.flush()
            s.expunge(t)
        return t

    def update(self, ctx: RequestContext, ref: str, body: dict[str, Any]) -> GroupType:
        self.svc.enforce(ctx, "group:group_types:update")
        name, description, public = body.get("name"), body.get("description"), body.get("is_public")
        if name is not None and not name.strip():
            raise errors.BadRequest("Group type name can not be empty.")
        if name is None and description is None and public is None:
            raise errors.BadRequest("Specify group type name, description or a combination thereof.")
        with self.svc.session() as s:
            t = self.resolve(s, ctx, ref)
            if name is not None and name != t.name:
                if s.scalar(select(GroupType).where(GroupType.name == name)) is not None:
                    raise errors.Conflict(f"Group Type {name} already exists.")
                t.name = name
            if description is not None:
                t.description = description
            if public is not None:
                t.is_public = truthy(public)
            s.flush()
            s.expunge(t)
        return t

    def delete(self, ctx: RequestContext, ref: str) -> None:
        self.svc.enforce(ctx, "group:group_types:delete")
        with self.svc.session() as s:
            t = self.resolve(s, ctx, ref)
            if s.scalar(select(Group.id).where(Group.group_type_id == t.id).limit(1)) is not None:
                raise errors.BadRequest("Target group type is still in use.")
            s.delete(t)

    # --- group specs ----------------------------------------------------------------------------------

    def specs(self, ctx: RequestContext, ref: str) -> dict[str, str]:
        self.svc.enforce(ctx, "group:group_types_specs")
        with self.svc.session() as s:
            return dict(self.resolve(s, ctx, ref).group_specs or {})

    def set_specs(self, ctx: RequestContext, ref: str, specs: dict[str, str]) -> dict[str, str]:
        self.svc.enforce(ctx, "group:group_types_specs")
        check_keys(specs)
        with self.svc.session() as s:
            t = self.resolve(s, ctx, ref)
            t.group_specs = {**(t.group_specs or {}), **specs}
            return dict(t.group_specs)

    def delete_spec(self, ctx: RequestContext, ref: str, key: str) -> None:
        self.svc.enforce(ctx, "group:group_types_specs")
        with self.svc.session() as s:
            t = self.resolve(s, ctx, ref)
            specs = dict(t.group_specs or {})
            if key not in specs:
                raise errors.NotFound(f"Group Type {ref} has no specs with key {key}.")
            del specs[key]
            t.group_specs = specs
