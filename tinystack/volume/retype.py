"""``os-retype`` and volume migration (``os-migrate_volume``, ``os-migrate_volume_completion``) between the
backends of the volume host (``[volume] enabled_backends``). A migration is desired state in the volume's row:
``migration_status`` and the document's ``migration`` (destination backend, the new file's ``name_id``); the
volume agent copies the data and the controller switches the volume to the copy (tinystack/volume/controller.py).
Attached volumes would migrate through the compute service's volume swap, which this cloud does not have: they
are refused with Cinder's 400."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from tinystack.core import desired, errors
from tinystack.core.auth import RequestContext
from tinystack.volume.models import Snapshot, Volume, VolumeType, utcnow

if TYPE_CHECKING:
    from tinystack.volume.service import VolumeService

BACKEND_KEY = "volume_backend_name"
POLICIES = ("never", "on-demand")


def refuse_if_migrating(vol: Volume) -> None:
    """Cinder's rule: while a migration runs, the volume is neither attached, extended, snapshotted, uploaded nor
    deleted (a locked one is in ``maintenance``, which its status checks refuse anyway)."""
    if vol.migration_status == "migrating":
        raise errors.BadRequest(f"Invalid volume: Volume {vol.id} is part of an active migration; wait for it "
                                f"to end (migration_status {vol.migration_status}).")


class Retype:
    def __init__(self, svc: VolumeService) -> None:
        self.svc = svc

    def served(self, t: VolumeType, backend: str | None = None) -> bool:
        """Whether ``backend`` (the default backend when None) serves volumes of type ``t``: the type names no
        backend, or that one."""
        wanted = (t.extra_specs or {}).get(BACKEND_KEY)
        return not wanted or wanted == (backend or self.svc.settings.backend_name)

    def backend_for(self, t: VolumeType) -> str | None:
        """The backend a new volume of type ``t`` goes to: the one its ``volume_backend_name`` names, else the
        default; None when no enabled backend has that name."""
        wanted = (t.extra_specs or {}).get(BACKEND_KEY)
        if not wanted:
            return self.svc.settings.backend_name
        return wanted if wanted in self.svc.settings.backends else None

    def hosts(self) -> dict[str, list[str]]:
        """Every volume host and its backends: the configured host, and those heard from (their own report)."""
        out: dict[str, list[str]] = {self.svc.settings.volume_host: list(self.svc.settings.backends)}
        for host, beat in self.svc.controller.heartbeats.items():
            pools = beat.get("pools")
            out[host] = list(pools) if isinstance(pools, dict) and pools else out.get(host,
                                                                                     list(self.svc.settings.backends))
        return out

    @staticmethod
    def where(vol: Volume, default: str) -> str:
        """``host@backend#pool`` as Cinder shows a volume's host (the pool is the backend's one directory)."""
        backend = vol.backend or default
        return f"{vol.host}@{backend}#{backend}"

    # --- retype ---------------------------------------------------------------------------------

    def retype(self, ctx: RequestContext, volume_id: str, new_type: str, policy: str | None) -> None:
        self.svc.enforce(ctx, "volume:retype")
        policy = policy or "never"
        if policy not in POLICIES:
            raise errors.BadRequest(f"Invalid input received: migration_policy must be one of {', '.join(POLICIES)}"
                                    f", not {policy!r}.")

        def attempt() -> bool:
            with self.svc.session() as s:
                vol = self.svc.volumes.find(s, ctx, volume_id)
                if vol.status not in ("available", "in-use"):
                    raise errors.BadRequest(f"Invalid volume: Volume {volume_id} status must be available or in-use "
                                            f"to retype, but the status is {vol.status}.")
                refuse_if_migrating(vol)
                target = self.svc.types.resolve(s, ctx, new_type)
                current = vol.volume_type_id or self.svc.types.resolve(s, ctx, None).id
                if target.id == current:
                    raise errors.BadRequest(f"Invalid input received: Retype of volume {volume_id} requires a new "
                                            f"type; it is already of type {target.name}.")
                if self.served(target, vol.backend):
                    vol.volume_type_id, vol.updated_at = target.id, utcnow()
                    return False
                if policy == "never":
                    raise errors.BadRequest(f"Invalid volume: Retype of volume {volume_id} to type {target.name} "
                                            f"needs a migration, and the migration policy is 'never'.")
                dest = self.backend_for(target)
                if dest is None:
                    raise errors.BadRequest(f"No valid backend was found. No backend serves volume type "
                                            f"{target.name} ({BACKEND_KEY}="
                                            f"{(target.extra_specs or {}).get(BACKEND_KEY)}).")
                self._check_movable(s, vol)
                self._start(s, vol, dest, lock=False, new_type=target.id)
                return True

        if desired.retry(attempt, what=f"Volume {volume_id}"):
            self.svc.controller.publish_soon("volume", volume_id)

    # --- migrate --------------------------------------------------------------------------------

    def migrate(self, ctx: RequestContext, volume_id: str, host: str | None, cluster: str | None,
                force_host_copy: bool = False, lock_volume: bool = False) -> None:
        """Start moving the volume's data to ``host`` (``host@backend#pool``). Every copy here is host-assisted
        (the node agent copies the file), so ``force_host_copy`` changes nothing."""
        self.svc.enforce(ctx, "volume_extension:volume_admin_actions:migrate_volume")
        if bool(host) == bool(cluster):
            raise errors.BadRequest("Invalid input received: exactly one of host or cluster is required.")
        dest = str(host or cluster)

        def attempt() -> None:
            with self.svc.session() as s:
                vol = self.svc.volumes.find(s, ctx, volume_id)
                if vol.status not in ("available", "in-use"):
                    raise errors.BadRequest(f"Invalid volume: Volume {volume_id} status must be available or in-use "
                                            f"to migrate, but the status is {vol.status}.")
                if vol.migration_status == "migrating":
                    raise errors.BadRequest(f"Invalid volume: Volume {volume_id} is already part of an active "
                                            f"migration.")
                node, backend = self._parse(dest)
                current = self.where(vol, self.svc.settings.backend_name)
                if node == vol.host and backend == (vol.backend or self.svc.settings.backend_name):
                    raise errors.BadRequest(f"Invalid host: Destination host {dest} must be different than the "
                                            f"current host {current}.")
                if node != vol.host:
                    # Each node's backends are directories of that node: the copy is one agent's job.
                    raise errors.BadRequest(f"Invalid host: Migrating volume {volume_id} from {current} to another "
                                            f"volume node ({node}) is not supported; its backends are "
                                            f"{', '.join(self.hosts().get(vol.host or '', []))}.")
                self._check_movable(s, vol)
                vtype = s.get(VolumeType, vol.volume_type_id) if vol.volume_type_id else None
                if vtype is not None and not self.served(vtype, backend):
                    raise errors.BadRequest(f"No valid backend was found. Volume type {vtype.name} needs "
                                            f"{BACKEND_KEY}={vtype.extra_specs.get(BACKEND_KEY)}, not {backend}; "
                                            f"retype the volume instead.")
                self._start(s, vol, backend, lock=lock_volume, new_type=None)

        desired.retry(attempt, what=f"Volume {volume_id}")
        self.svc.controller.publish_soon("volume", volume_id)

    def _parse(self, dest: str) -> tuple[str, str]:
        """``host@backend#pool`` (or ``host@backend``) of an enabled backend -> (host, backend); else Cinder's 400."""
        node, _, rest = dest.partition("@")
        backend, _, pool = rest.partition("#")
        backends = self.hosts().get(node)
        if not node or not backend or backends is None or backend not in backends or pool not in ("", backend):
            raise errors.BadRequest(f"Invalid host: No available service named {dest}.")
        return node, backend

    def _check_movable(self, s: Any, vol: Volume) -> None:
        """What Cinder refuses to migrate: an attached volume (needs compute's swap), one with snapshots, one in a
        group."""
        if vol.status == "in-use":
            raise errors.BadRequest(f"Invalid volume: Volume {vol.id} is attached: migrating an attached volume "
                                    f"needs the compute service's volume swap, which this cloud does not offer; "
                                    f"detach it first.")
        if s.scalar(select(Snapshot.id).where(Snapshot.volume_id == vol.id).limit(1)) is not None:
            raise errors.BadRequest(f"Invalid volume: Volume {vol.id} must not have snapshots.")
        if vol.group_id is not None:
            raise errors.BadRequest(f"Invalid volume: Volume {vol.id} must not be part of a group.")

    def _start(self, s: Any, vol: Volume, backend: str, *, lock: bool, new_type: str | None) -> None:
        """The migration as desired state: the agent copies into a new file named after a fresh ``name_id``. A
        locked migration holds the volume in ``maintenance``, a retype in ``retyping``, until it ends."""
        values: dict[str, Any] = {
            "migration_status": "migrating", "fault": None, "updated_at": utcnow(),
            "doc": {**vol.doc, "migration": {"backend": backend, "name_id": str(uuid.uuid4()),
                                             "new_type": new_type}}}
        if lock or new_type:
            values.update(previous_status=vol.status, status="retyping" if new_type else "maintenance")
        desired.bump_or_lose(s, Volume, vol.id, vol.generation, values, guard={"status": vol.status})

    def migrate_completion(self, ctx: RequestContext, volume_id: str, new_volume: str) -> None:
        """Nova calls this after swapping an attached volume onto a new one. Migrations here copy in the node
        agent and switch the volume themselves, with no second volume: no volume ever waits for this call."""
        self.svc.enforce(ctx, "volume_extension:volume_admin_actions:migrate_volume_completion")
        with self.svc.session() as s:
            vol = self.svc.volumes.find(s, ctx, volume_id)
            self.svc.volumes.find(s, ctx, new_volume)
            if vol.migration_status == "migrating":
                raise errors.BadRequest(f"Invalid volume: Volume {volume_id} is migrating by a host copy; it "
                                        f"completes on its own.")
        raise errors.BadRequest(f"Invalid volume: Source volume {volume_id} not mid-migration.")
