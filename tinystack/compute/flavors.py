"""Flavors: DevStack's defaults, admin create/delete, extra specs and access lists for private flavors."""

from __future__ import annotations

import builtins
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tinystack.compute.models import Flavor, FlavorAccess, utcnow
from tinystack.core import errors
from tinystack.core.auth import RequestContext

if TYPE_CHECKING:
    from tinystack.compute.service import ComputeService

P = "os_compute_api"

# (id, name, vcpus, ram MB, disk GB): the seed table's m1.* plus DevStack's small flavors.
DEFAULT_FLAVORS: list[tuple[str, str, int, int, int]] = [
    ("1", "m1.tiny", 1, 512, 1), ("2", "m1.small", 1, 2048, 20), ("3", "m1.medium", 2, 4096, 40),
    ("4", "m1.large", 4, 8192, 80), ("5", "m1.xlarge", 8, 16384, 160),
    ("42", "m1.nano", 1, 128, 1), ("84", "m1.micro", 1, 192, 1), ("c1", "cirros256", 1, 256, 1),
    ("d1", "ds512M", 1, 512, 5), ("d2", "ds1G", 1, 1024, 10), ("d3", "ds2G", 2, 2048, 10),
]


def not_found(flavor_id: str) -> errors.NotFound:
    return errors.NotFound(f"Flavor {flavor_id} could not be found.")


class Flavors:
    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc

    def bootstrap(self) -> None:
        """Create the default flavors that do not exist yet (by id); safe on every start."""
        with self.svc.session() as s:
            have = set(s.scalars(select(Flavor.id)).all())
            names = set(s.scalars(select(Flavor.name)).all())
            for fid, name, vcpus, ram, disk in DEFAULT_FLAVORS:
                if fid not in have and name not in names:
                    s.add(Flavor(id=fid, name=name, vcpus=vcpus, memory_mb=ram, root_gb=disk, ephemeral_gb=0,
                                 swap=0, rxtx_factor=1.0, is_public=True, disabled=False, extra_specs={},
                                 created_at=utcnow()))

    def visible(self, s: Session, ctx: RequestContext, flavor: Flavor) -> bool:
        if flavor.is_public or ctx.is_admin:
            return True
        return s.get(FlavorAccess, (flavor.id, ctx.project_id or "")) is not None

    def find(self, s: Session, ctx: RequestContext, flavor_id: str) -> Flavor:
        flavor = s.get(Flavor, flavor_id)
        if flavor is None or not self.visible(s, ctx, flavor):
            raise not_found(flavor_id)
        return flavor

    def get(self, ctx: RequestContext, flavor_id: str) -> Flavor:
        with self.svc.session() as s:
            return self.find(s, ctx, flavor_id)

    def list(self, ctx: RequestContext, is_public: str | None, min_disk: int | None, min_ram: int | None,
             sort_key: str, sort_dir: str) -> builtins.list[Flavor]:
        if sort_key not in ("id", "name", "memory_mb", "root_gb", "vcpus", "flavorid", "ephemeral_gb", "swap",
                            "rxtx_factor", "created_at", "description", "disabled", "is_public"):
            raise errors.BadRequest(f"Invalid sort_key: {sort_key}")
        if sort_dir not in ("asc", "desc"):
            raise errors.BadRequest(f"Invalid sort_dir: {sort_dir}")
        col = getattr(Flavor, "id" if sort_key == "flavorid" else sort_key)
        q = select(Flavor).order_by(col.desc() if sort_dir == "desc" else col.asc(), Flavor.id)
        if min_disk is not None:
            q = q.where(Flavor.root_gb >= min_disk)
        if min_ram is not None:
            q = q.where(Flavor.memory_mb >= min_ram)
        with self.svc.session() as s:
            rows = list(s.scalars(q).all())
            access = {a.flavor_id for a in s.scalars(
                select(FlavorAccess).where(FlavorAccess.project_id == (ctx.project_id or ""))).all()}
        # Nova: non-admins see public flavors plus private ones they have access to; admins choose.
        pub = (is_public or "").lower()
        if ctx.is_admin:
            if pub in ("none", "all"):
                return rows
            want = pub not in ("false", "0", "no", "off")
            return [f for f in rows if f.is_public == want]
        return [f for f in rows if f.is_public or f.id in access]

    def create(self, ctx: RequestContext, body: dict[str, Any]) -> Flavor:
        self.svc.enforce(ctx, f"{P}:os-flavor-manage:create")
        fid = body.get("id") or str(uuid.uuid4())
        name = body["name"].strip()
        if not name:
            raise errors.BadRequest("Invalid input for field/attribute name: name must not be blank.")
        with self.svc.session() as s:
            if s.get(Flavor, str(fid)) is not None:
                raise errors.Conflict(f"Flavor with ID {fid} already exists.")
            if s.scalar(select(Flavor).where(Flavor.name == name)) is not None:
                raise errors.Conflict(f"Flavor with name {name} already exists.")
            flavor = Flavor(id=str(fid), name=name, vcpus=body["vcpus"], memory_mb=body["ram"], root_gb=body["disk"],
                            ephemeral_gb=body.get("OS-FLV-EXT-DATA:ephemeral", 0), swap=body.get("swap") or 0,
                            rxtx_factor=body.get("rxtx_factor", 1.0),
                            is_public=body.get("os-flavor-access:is_public", True), disabled=False,
                            description=body.get("description"), extra_specs={}, created_at=utcnow())
            s.add(flavor)
        return flavor

    def update(self, ctx: RequestContext, flavor_id: str, description: str | None) -> Flavor:
        self.svc.enforce(ctx, f"{P}:os-flavor-manage:update")
        with self.svc.session() as s:
            flavor = self.find(s, ctx, flavor_id)
            flavor.description = description
        return flavor

    def delete(self, ctx: RequestContext, flavor_id: str) -> None:
        self.svc.enforce(ctx, f"{P}:os-flavor-manage:delete")
        with self.svc.session() as s:
            flavor = self.find(s, ctx, flavor_id)
            s.delete(flavor)
            s.execute(delete(FlavorAccess).where(FlavorAccess.flavor_id == flavor_id))

    # --- extra specs ----------------------------------------------------------------------------

    def extra_specs(self, ctx: RequestContext, flavor_id: str) -> dict[str, str]:
        return dict(self.get(ctx, flavor_id).extra_specs or {})

    def set_extra_specs(self, ctx: RequestContext, flavor_id: str, specs: dict[str, Any]) -> dict[str, str]:
        self.svc.enforce(ctx, f"{P}:os-flavor-extra-specs:manage")
        for key, value in specs.items():
            if not isinstance(value, str | int | float | bool) or len(key) > 255 or len(str(value)) > 255:
                raise errors.BadRequest(f"Invalid extra spec {key!r}.")
        with self.svc.session() as s:
            flavor = self.find(s, ctx, flavor_id)
            merged = {**(flavor.extra_specs or {}), **{k: str(v) for k, v in specs.items()}}
            flavor.extra_specs = merged
        return {k: merged[k] for k in specs}

    def delete_extra_spec(self, ctx: RequestContext, flavor_id: str, key: str) -> None:
        self.svc.enforce(ctx, f"{P}:os-flavor-extra-specs:manage")
        with self.svc.session() as s:
            flavor = self.find(s, ctx, flavor_id)
            specs = dict(flavor.extra_specs or {})
            if key not in specs:
                raise errors.NotFound(f"Flavor {flavor_id} has no extra specs with key {key}.")
            del specs[key]
            flavor.extra_specs = specs

    # --- access lists ---------------------------------------------------------------------------

    def access(self, ctx: RequestContext, flavor_id: str) -> builtins.list[str]:
        self.svc.enforce(ctx, f"{P}:os-flavor-access")
        with self.svc.session() as s:
            flavor = self.find(s, ctx, flavor_id)
            if flavor.is_public:
                raise errors.NotFound("Access list not available for public flavors.")
            return sorted(s.scalars(select(FlavorAccess.project_id).where(FlavorAccess.flavor_id == flavor_id)))

    def add_access(self, ctx: RequestContext, flavor_id: str, project_id: str) -> builtins.list[str]:
        self.svc.enforce(ctx, f"{P}:os-flavor-access")
        with self.svc.session() as s:
            flavor = self.find(s, ctx, flavor_id)
            if flavor.is_public:
                raise errors.Conflict("Can not add access to a public flavor.")
            if s.get(FlavorAccess, (flavor_id, project_id)) is not None:
                raise errors.Conflict(f"Flavor access already exists for flavor {flavor_id} and project "
                                      f"{project_id} combination.")
            s.add(FlavorAccess(flavor_id=flavor_id, project_id=project_id))
        return self.access(ctx, flavor_id)

    def remove_access(self, ctx: RequestContext, flavor_id: str, project_id: str) -> builtins.list[str]:
        self.svc.enforce(ctx, f"{P}:os-flavor-access")
        with self.svc.session() as s:
            self.find(s, ctx, flavor_id)
            row = s.get(FlavorAccess, (flavor_id, project_id))
            if row is None:
                raise errors.NotFound(f"Flavor access not found for {flavor_id} / {project_id} combination.")
            s.delete(row)
        return self.access(ctx, flavor_id)


def snapshot(flavor: Flavor) -> dict[str, Any]:
    """The flavor as an instance keeps it (a copy: later flavor edits do not change running servers)."""
    return {"id": flavor.id, "name": flavor.name, "vcpus": flavor.vcpus, "memory_mb": flavor.memory_mb,
            "root_gb": flavor.root_gb, "ephemeral_gb": flavor.ephemeral_gb, "swap": flavor.swap,
            "extra_specs": dict(flavor.extra_specs or {})}
