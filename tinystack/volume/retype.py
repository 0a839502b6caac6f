"""``os-retype`` and volume migration (``os-migrate_volume``, ``os-migrate_volume_completion``). This cloud has
one storage backend (``[volume] backend_name``), so a retype between types it serves is a bookkeeping change
and a migration, which needs another backend, is refused up front with Cinder's 400."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.volume.models import VolumeType, utcnow

if TYPE_CHECKING:
    from tinystack.volume.service import VolumeService

BACKEND_KEY = "volume_backend_name"


class Retype:
    def __init__(self, svc: VolumeService) -> None:
        self.svc = svc

    def served(self, t: VolumeType) -> bool:
        """Whether this cloud's backend serves volumes of type ``t`` (no backend named, or ours)."""
        wanted = (t.extra_specs or {}).get(BACKEND_KEY)
        return not wanted or wanted == self.svc.settings.backend_name

    def retype(self, ctx: RequestContext, volume_id: str, new_type: str, policy: str | None) -> None:
        self.svc.enforce(ctx, "volume:retype")
        with self.svc.session() as s:
            vol = self.svc.volumes.find(s, ctx, volume_id)
            if vol.status not in ("available", "in-use"):
                raise errors.BadRequest(f"Invalid volume: Volume {volume_id} status must be available or in-use to "
                                        f"retype, but the status is {vol.status}.")
            target = self.svc.types.resolve(s, ctx, new_type)
            current = vol.volume_type_id or self.svc.types.resolve(s, ctx, None).id
            if target.id == current:
                raise errors.BadRequest(f"Invalid input received: Retype of volume {volume_id} requires a new "
                                        f"type; it is already of type {target.name}.")
            if not self.served(target):
                # Another backend: a migration, which needs a host serving it; this cloud has none.
                if (policy or "never") == "never":
                    raise errors.BadRequest(f"Invalid volume: Retype of volume {volume_id} to type {target.name} "
                                            f"needs a migration, and the migration policy is 'never'.")
                raise errors.BadRequest(f"No valid backend was found. No backend serves volume type "
                                        f"{target.name} ({BACKEND_KEY}="
                                        f"{target.extra_specs.get(BACKEND_KEY)}).")
            vol.volume_type_id, vol.updated_at = target.id, utcnow()

    def migrate(self, ctx: RequestContext, volume_id: str, host: str | None, cluster: str | None) -> None:
        self.svc.enforce(ctx, "volume_extension:volume_admin_actions:migrate_volume")
        if not host and not cluster:
            raise errors.BadRequest("Invalid input received: one of host or cluster is required.")
        with self.svc.session() as s:
            vol = self.svc.volumes.find(s, ctx, volume_id)
            if vol.status not in ("available", "in-use"):
                raise errors.BadRequest(f"Invalid volume: Volume {volume_id} status must be available or in-use to "
                                        f"migrate, but the status is {vol.status}.")
            ours = self.svc.settings.backend_name
            current = f"{vol.host}@{ours}"
            dest = host or cluster or ""
            if dest.split("#", 1)[0] in (vol.host, current):
                raise errors.BadRequest(f"Invalid host: Destination host {dest} must be different than the "
                                        f"current host {current}.")
        raise errors.BadRequest(f"Invalid host: No available service named {dest}: this cloud has one storage "
                                f"backend ({current}), so there is no other host to migrate to.")

    def migrate_completion(self, ctx: RequestContext, volume_id: str, new_volume: str) -> None:
        self.svc.enforce(ctx, "volume_extension:volume_admin_actions:migrate_volume_completion")
        with self.svc.session() as s:
            self.svc.volumes.find(s, ctx, volume_id)
            self.svc.volumes.find(s, ctx, new_volume)
        # No migration ever starts here (migrate above refuses), so no volume is mid-migration.
        raise errors.BadRequest(f"Invalid volume: Source volume {volume_id} not mid-migration.")
