"""Volume types: the default type every volume gets when it names none, and admin-managed others with extra
specs and access lists. The file backend serves every type alike; the type is bookkeeping for users."""

from __future__ import annotations

import builtins
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.volume.models import DefaultType, Group, Volume, VolumeType
from tinystack.volume.schemas import truthy

if TYPE_CHECKING:
    from tinystack.volume.service import VolumeService


def not_found(ref: str) -> errors.NotFound:
    return errors.NotFound(f"Volume type {ref} could not be found.")


class VolumeTypes:
    def __init__(self, svc: VolumeService) -> None:
        self.svc = svc

    def bootstrap(self) -> None:
        """The default type exists from the first start (Cinder's ``__DEFAULT__``)."""
        name = self.svc.settings.default_volume_type
        with self.svc.session() as s:
            if s.scalar(select(VolumeType).where(VolumeType.name == name)) is None:
                s.add(VolumeType(id=str(uuid.uuid4()), name=name, description="Default Volume Type",
                                 is_public=True, extra_specs={}, projects=[]))

    def visible(self, ctx: RequestContext, t: VolumeType) -> bool:
        return t.is_public or ctx.is_admin or (ctx.project_id or "") in (t.projects or [])

    def resolve(self, s: Session, ctx: RequestContext, ref: str | None) -> VolumeType:
        """A type by id or name (the default when ``ref`` is empty); unknown or not visible is a 404."""
        if not ref:
            own = s.get(DefaultType, ctx.project_id) if ctx.project_id else None
            ref = own.volume_type_id if own is not None else self.svc.settings.default_volume_type
        t = s.get(VolumeType, ref) or s.scalar(select(VolumeType).where(VolumeType.name == ref))
        if t is None or not self.visible(ctx, t):
            raise not_found(ref)
        return t

    def list(self, ctx: RequestContext, is_public: str | None) -> builtins.list[VolumeType]:
        with self.svc.session() as s:
            rows = [t for t in s.scalars(select(VolumeType).order_by(VolumeType.name)) if self.visible(ctx, t)]
            if is_public is not None and ctx.is_admin and is_public.lower() != "none":
                want = truthy(is_public)
                rows = [t for t in rows if t.is_public == want]
            for t in rows:
                s.expunge(t)
        return rows

    def get(self, ctx: RequestContext, ref: str) -> VolumeType:
        with self.svc.session() as s:
            t = self.resolve(s, ctx, ref) if ref != "default" else self.resolve(s, ctx, None)
            s.expunge(t)
        return t

    def create(self, ctx: RequestContext, body: dict[str, Any]) -> VolumeType:
        self.svc.enforce(ctx, "volume_extension:types_manage")
        name = body["name"].strip()
        if not name:
            raise errors.BadRequest("Volume type name can not be empty.")
        public = truthy(body.get("os-volume-type-access:is_public", body.get("is_public", True)))
        with self.svc.session() as s:
            if s.scalar(select(VolumeType).where(VolumeType.name == name)) is not None:
                raise errors.Conflict(f"Volume Type {name} already exists.")
            t = VolumeType(id=str(uuid.uuid4()), name=name, description=body.get("description"), is_public=public,
                           extra_specs=dict(body.get("extra_specs") or {}), projects=[])
            s.add(t)
            s.flush()
            s.expunge(t)
        return t

    def update(self, ctx: RequestContext, ref: str, body: dict[str, Any]) -> VolumeType:
        self.svc.enforce(ctx, "volume_extension:types_manage")
        with self.svc.session() as s:
            t = self.resolve(s, ctx, ref)
            if "name" in body and body["name"] != t.name:
                if t.name == self.svc.settings.default_volume_type:
                    raise errors.BadRequest("The default volume type cannot be renamed.")
                if s.scalar(select(VolumeType).where(VolumeType.name == body["name"])) is not None:
                    raise errors.Conflict(f"Volume Type {body['name']} already exists.")
                t.name = body["name"]
            if "description" in body:
                t.description = body["description"]
            if "is_public" in body:
                t.is_public = truthy(body["is_public"])
            s.flush()
            s.expunge(t)
        return t

    def delete(self, ctx: RequestContext, ref: str) -> None:
        self.svc.enforce(ctx, "volume_extension:types_manage")
        with self.svc.session() as s:
            t = self.resolve(s, ctx, ref)
            if t.name == self.svc.settings.default_volume_type:
                raise errors.BadRequest("The default volume type cannot be deleted.")
            if s.scalar(select(Volume.id).where(Volume.volume_type_id == t.id).limit(1)) is not None:
                raise errors.BadRequest(f"Target volume type {ref} is still in use.")
            if any(t.id in (ids or []) for ids in s.scalars(select(Group.volume_type_ids))):
                raise errors.BadRequest(f"Target volume type {ref} is still in use by a group.")
            if s.scalar(select(DefaultType.project_id).where(DefaultType.volume_type_id == t.id).limit(1)):
                raise errors.BadRequest(f"Target volume type {ref} is a project's default type: unset it first.")
            s.delete(t)

    def set_specs(self, ctx: RequestContext, ref: str, specs: dict[str, str], replace: bool = False) -> dict[str, str]:
        self.svc.enforce(ctx, "volume_extension:types_manage")
        with self.svc.session() as s:
            t = self.resolve(s, ctx, ref)
            t.extra_specs = dict(specs) if replace else {**(t.extra_specs or {}), **specs}
            return dict(t.extra_specs)

    def delete_spec(self, ctx: RequestContext, ref: str, key: str) -> None:
        self.svc.enforce(ctx, "volume_extension:types_manage")
        with self.svc.session() as s:
            t = self.resolve(s, ctx, ref)
            specs = dict(t.extra_specs or {})
            if key not in specs:
                raise errors.NotFound(f"Volume Type {ref} has no extra specs with key {key}.")
            del specs[key]
            t.extra_specs = specs

    def access(self, ctx: RequestContext, ref: str, project_id: str | None, add: bool | None) -> builtins.list[str]:
        """List (``add`` None), add or remove a project on a private type's access list."""
        self.svc.enforce(ctx, "volume_extension:types_manage")
        with self.svc.session() as s:
            t = self.resolve(s, ctx, ref)
            if add is not None:
                if t.is_public:
                    raise errors.BadRequest("Invalid volume type: Type access modification is not applicable to "
                                            "public volume type.")
                projects = list(t.projects or [])
                if add and project_id not in projects:
                    projects.append(str(project_id))
                elif not add:
                    if project_id not in projects:
                        raise errors.NotFound(f"Volume type access not found for {ref} / {project_id} combination.")
                    projects.remove(str(project_id))
                t.projects = projects
            return list(t.projects or [])
