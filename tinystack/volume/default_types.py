"""Per-project default volume types (``/default-types``, 3.62): set, show, list and unset the type a project's
volumes get when a request names none (``VolumeTypes.resolve`` reads it)."""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING

from sqlalchemy import select

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.volume.models import DefaultType, utcnow

if TYPE_CHECKING:
    from tinystack.volume.service import VolumeService


def not_found(project_id: str) -> errors.NotFound:
    return errors.NotFound(f"Default type for project {project_id} could not be found.")


class DefaultTypes:
    def __init__(self, svc: VolumeService) -> None:
        self.svc = svc

    def set(self, ctx: RequestContext, project_id: str, type_ref: str) -> DefaultType:
        self.svc.enforce(ctx, "volume_extension:default_set_or_update", {"project_id": project_id})
        with self.svc.session() as s:
            t = self.svc.types.resolve(s, ctx, type_ref)
            row = s.get(DefaultType, project_id)
            if row is None:
                row = DefaultType(project_id=project_id, volume_type_id=t.id, created_at=utcnow())
                s.add(row)
            row.volume_type_id = t.id
            s.flush()
            s.expunge(row)
        return row

    def get(self, ctx: RequestContext, project_id: str) -> DefaultType:
        self.svc.enforce(ctx, "volume_extension:default_get", {"project_id": project_id})
        with self.svc.session() as s:
            row = s.get(DefaultType, project_id)
            if row is None:
                raise not_found(project_id)
            s.expunge(row)
        return row

    def list(self, ctx: RequestContext) -> builtins.list[DefaultType]:
        self.svc.enforce(ctx, "volume_extension:default_get_all")
        with self.svc.session() as s:
            rows = list(s.scalars(select(DefaultType).order_by(DefaultType.project_id)))
            for r in rows:
                s.expunge(r)
        return rows

    def unset(self, ctx: RequestContext, project_id: str) -> None:
        self.svc.enforce(ctx, "volume_extension:default_unset", {"project_id": project_id})
        with self.svc.session() as s:
            row = s.get(DefaultType, project_id)
            if row is None:
                raise not_found(project_id)
            s.delete(row)
