"""Volumes at server create (``block_device_mapping_v2`` with destination ``volume``): Nova's checks at the API,
and the conductor's ``block_device_mapping`` step that makes, waits for and reserves each volume before the boot."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tinystack.compute.models import BlockDeviceMapping, Instance, utcnow
from tinystack.compute.schemas import as_bool
from tinystack.compute.volumes import ATTACHING, LAST_DATA_VOLUMES, next_device
from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.volume.interface import VOLUME

if TYPE_CHECKING:
    from tinystack.compute.service import ComputeService

log = logging.getLogger(__name__)
GiB = 1024**3
INVALID = "Block Device Mapping is Invalid"
BAD_SEQUENCE = f"{INVALID}: Boot sequence for the instance and image/block device mapping combination is not valid."
# Core image fields Cinder copies into volume_image_metadata (everything else there is a custom property).
_IMAGE_CORE = {"image_id": "id", "image_name": "name", "checksum": "checksum",
               "container_format": "container_format", "disk_format": "disk_format", "min_disk": "min_disk",
               "min_ram": "min_ram", "size": "size"}


def parse_boot_index(raw: Any) -> int | None:
    """Nova's boot_index: an integer (or its string); none, null or a negative one means not bootable."""
    if raw is None or (isinstance(raw, str) and raw.strip().lower() in ("", "none", "null")):
        return None
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise errors.BadRequest(f"{INVALID}: boot_index {raw!r} is not an integer.") from None
    return value if value >= 0 else None


def parse_size(raw: Any) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise errors.BadRequest(f"{INVALID}: volume_size {raw!r} is not an integer.") from None
    if value <= 0:
        raise errors.BadRequest(f"{INVALID}: volume_size must be a positive number of GiB, not {value}.")
    return value


def image_from_volume(meta: dict[str, Any]) -> dict[str, Any]:
    """The image a volume was made from, shaped as the instance document's ``image``, from its
    ``volume_image_metadata`` (so an AMI's kernel_id and ramdisk_id come along as properties)."""
    out: dict[str, Any] = {"id": None, "name": None, "disk_format": None, "container_format": None, "size": 0,
                           "virtual_size": None, "checksum": None, "min_disk": 0, "min_ram": 0}
    props: dict[str, Any] = {}
    for key, value in (meta or {}).items():
        if key in _IMAGE_CORE:
            name = _IMAGE_CORE[key]
            out[name] = _int(value) if name in ("size", "min_disk", "min_ram") else value
        else:
            props[key] = value
    out["properties"] = props
    return out


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def image_gb(image: dict[str, Any]) -> int:
    """The smallest volume that holds the image: its (virtual) size rounded up to GiB, at least min_disk."""
    size = max(_int(image.get("size")), _int(image.get("virtual_size")))
    return max(-(-size // GiB), _int(image.get("min_disk")))


@dataclass
class Plan:
    """What create does with the mappings: the image of an image-backed server, or the image a volume-backed
    server's root volume carries, and the volumes to make or reserve at build (the root volume first)."""

    image_ref: str = ""
    image: dict[str, Any] | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def volume_backed(self) -> bool:
        return any(r["boot_index"] == 0 for r in self.requests)


class BuildAborted(Exception):
    """The volumes of a server could not be made ready: the server goes to ERROR with this message."""


class BootVolumes:
    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc

    # --- at the API -----------------------------------------------------------------------------

    def plan(self, ctx: RequestContext, body: dict[str, Any], flavor: dict[str, Any], count: int) -> Plan:
        """Check ``block_device_mapping_v2`` as Nova does (every problem is a 400) and plan the volumes."""
        plan = Plan(image_ref=str(body.get("imageRef") or ""))
        boot_indexes: list[int] = []
        seen: set[str] = set()
        for raw in body.get("block_device_mapping_v2") or []:
            src = str(raw.get("source_type") or "")
            if not src:
                raise errors.BadRequest(f"{INVALID}: source_type is required.")
            dest = str(raw.get("destination_type") or ("volume" if src in ("volume", "snapshot") else "local"))
            boot_index = parse_boot_index(raw.get("boot_index"))
            if boot_index is not None:
                boot_indexes.append(boot_index)
            ref = str(raw.get("uuid") or "")
            if dest == "local":
                if src != "image":
                    raise errors.BadRequest(f"{INVALID}: a {src} source with destination local (ephemeral or swap "
                                            "disks) is not supported here; use a flavor's ephemeral and swap.")
                if boot_index != 0:
                    raise errors.BadRequest("Mapping image to local is not supported.")
                plan.image_ref = plan.image_ref or ref
                continue
            if src != "blank" and not ref:
                raise errors.BadRequest(f"{INVALID}: Missing device UUID.")
            if ref and ref in seen:
                raise errors.BadRequest(f"{INVALID}: {ref} is mapped more than once.")
            seen.add(ref)
            req: dict[str, Any] = {
                "source_type": src, "uuid": ref or None, "boot_index": 0 if boot_index == 0 else None,
                "volume_size": parse_size(raw.get("volume_size")), "tag": raw.get("tag"),
                "delete_on_termination": as_bool(raw.get("delete_on_termination", False)),
                "volume_id": None, "created": False}
            image = self._check_source(ctx, req, flavor, count, image_given=bool(body.get("imageRef")))
            if req["boot_index"] == 0:
                plan.image = image
            plan.requests.append(req)
        if sorted(boot_indexes) != list(range(len(boot_indexes))):
            raise errors.BadRequest(BAD_SEQUENCE)
        if len([r for r in plan.requests if r["boot_index"] != 0]) > LAST_DATA_VOLUMES:
            raise errors.BadRequest(f"{INVALID}: a server has at most {LAST_DATA_VOLUMES} volumes besides its root.")
        if plan.volume_backed:
            plan.image_ref = ""  # Nova keeps no image on a volume-backed server
            plan.requests.sort(key=lambda r: r["boot_index"] != 0)
        return plan

    def _check_source(self, ctx: RequestContext, req: dict[str, Any], flavor: dict[str, Any],
                      count: int, image_given: bool = False) -> dict[str, Any] | None:
        """Nova's per-mapping checks; returns the image the volume will carry (for a root volume).

        With ``imageRef`` in the request, Nova takes the boot metadata from that image and does not ask whether
        a root volume is bootable (a blank volume made by a client is not), so neither do we."""
        src, ref, boot = req["source_type"], req["uuid"], req["boot_index"] == 0
        if src == "volume":
            if count > 1:
                raise errors.BadRequest("Cannot attach one or more volumes to multiple instances")
            try:
                vol = self.volume_info(ctx, ref)
            except errors.NotFound:
                raise errors.BadRequest(f"{INVALID}: failed to get volume {ref}.") from None
            if vol["status"] != "available":
                raise errors.BadRequest(f"Invalid volume: volume '{ref}' status must be 'available'. Currently in "
                                        f"'{vol['status']}'")
            req["volume_id"] = ref
            if boot and image_given:
                return None
            if boot and not vol.get("bootable"):
                raise errors.BadRequest(f"Block Device {ref} is not bootable.")
            return image_from_volume(vol.get("volume_image_metadata") or {}) if boot else None
        if src == "snapshot":
            try:
                snap = self.svc.service(VOLUME).get_snapshot(ctx, ref)
            except errors.NotFound:
                raise errors.BadRequest(f"{INVALID}: failed to get snapshot {ref}.") from None
            if snap["status"] != "available":
                raise errors.BadRequest(f"Invalid snapshot: snapshot {ref} status must be 'available'. Currently "
                                        f"in '{snap['status']}'")
            size = req["volume_size"] = req["volume_size"] or int(snap["size"])
            if size < int(snap["size"]):
                raise errors.BadRequest(f"{INVALID}: volume_size {size} is smaller than snapshot {ref} "
                                        f"({snap['size']} GiB).")
            if not boot:
                return None
            try:
                parent = self.volume_info(ctx, str(snap["volume_id"]))
            except errors.NotFound:
                parent = {}
            if not parent.get("bootable"):
                raise errors.BadRequest(f"Block Device {ref} is not bootable.")
            return image_from_volume(parent.get("volume_image_metadata") or {})
        if src == "image":
            image = self.svc.servers.image_info(ctx, ref)
            need = image_gb(image)
            size = req["volume_size"] = req["volume_size"] or max(need, int(flavor.get("root_gb") or 0), 1)
            if size < need:
                raise errors.BadRequest("Volume is smaller than the minimum size specified in image metadata. "
                                        f"Volume size is {size * GiB} bytes, minimum size is {need * GiB} bytes.")
            return image if boot else None
        # blank
        if boot:
            raise errors.BadRequest(f"{INVALID}: a blank volume cannot be the boot device.")
        if req["volume_size"] is None:
            raise errors.BadRequest(f"{INVALID}: Blank volumes (source: 'blank', dest: 'volume') need to have "
                                    "non-zero size")
        return None

    def volume_info(self, ctx: RequestContext, volume_id: str) -> dict[str, Any]:
        """The volume service's view of a volume, with its ``volume_image_metadata``."""
        return dict(self.svc.service(VOLUME).get(ctx, volume_id))

    # --- the conductor's block_device_mapping step ----------------------------------------------

    async def prepare(self, iid: str, ctx: RequestContext) -> None:
        """Make each requested volume (as the server's project), wait until it is available, reserve it and
        record its mapping; a repeat (after a restart) skips what is done. Raises BuildAborted."""
        with self.svc.session() as s:
            inst = s.get(Instance, iid)
            if inst is None:
                return
            requests = [dict(r) for r in inst.doc.get("bdm_requests") or []]
            mapped = {b.volume_id for b in inst.bdms}
        volume_svc = self.svc.service(VOLUME)
        for index, req in enumerate(requests):
            if req.get("volume_id") in mapped:
                continue
            if not req.get("volume_id"):
                try:
                    vol = volume_svc.create_volume(ctx, self._volume_body(iid, req))
                except errors.TinyError as exc:
                    raise BuildAborted(f"Build of instance {iid} aborted: creating its {req['source_type']} volume "
                                       f"failed: {exc}") from None
                req.update(volume_id=str(vol["id"]), created=True)
                self._remember(iid, index, req)
            vid = str(req["volume_id"])
            if req.get("created"):
                await self._wait_available(iid, ctx, vid)
                if self._gone(iid):
                    return
            try:
                info = self.volume_info(ctx, vid)
            except errors.NotFound:
                raise BuildAborted(f"Build of instance {iid} aborted: volume {vid} is gone.") from None
            if not await self._reserve(iid, ctx, req, index, info):
                return

    @staticmethod
    def _volume_body(iid: str, req: dict[str, Any]) -> dict[str, Any]:
        # Nova names a blank volume after the server and leaves the others unnamed.
        body: dict[str, Any] = {"size": req["volume_size"], "name": f"{iid}-blank-vol" if req["source_type"] == "blank"
                                else ""}
        if req["source_type"] == "image":
            body["imageRef"] = req["uuid"]
        elif req["source_type"] == "snapshot":
            body["snapshot_id"] = req["uuid"]
        return body

    def _remember(self, iid: str, index: int, req: dict[str, Any]) -> None:
        """Write the made volume's id into the request at once: a retried build must not make another."""
        with self.svc.session() as s:
            row = s.get(Instance, iid)
            if row is None:
                return
            reqs = [dict(r) for r in row.doc.get("bdm_requests") or []]
            reqs[index] = dict(req)
            row.doc = {**row.doc, "bdm_requests": reqs}

    def _gone(self, iid: str) -> bool:
        with self.svc.session() as s:
            inst = s.get(Instance, iid)
            return inst is None or inst.deleted or inst.task_state == "deleting"

    async def _wait_available(self, iid: str, ctx: RequestContext, vid: str) -> None:
        """Nova's block_device_allocate_retries: poll, bounded; an ``error`` volume or the bound ends the build."""
        timeout = self.svc.settings.block_device_allocate_timeout
        start = time.monotonic()
        attempts = 0
        while True:
            attempts += 1
            try:
                status = str(self.svc.service(VOLUME).get(ctx, vid)["status"])
            except errors.NotFound:
                status = "deleted"
            if status == "available":
                return
            waited = time.monotonic() - start
            if status in ("error", "deleted") or waited >= timeout:
                raise BuildAborted(f"Build of instance {iid} aborted: Volume {vid} did not finish being created even "
                                   f"after we waited {int(waited)} seconds or {attempts} attempts. And its status is "
                                   f"{status}.")
            # Even for a server deleted meanwhile: a volume still being made cannot be deleted yet.
            await asyncio.sleep(min(0.5, max(0.05, timeout - waited)))

    async def _reserve(self, iid: str, ctx: RequestContext, req: dict[str, Any], index: int,
                       info: dict[str, Any]) -> bool:
        """Reserve the volume for the server and record its mapping (the root volume is /dev/vda); the root's
        ``volume_image_metadata`` becomes the instance's image. False when the server went meanwhile."""
        vid = str(req["volume_id"])
        root = req.get("boot_index") == 0
        with self.svc.session() as s:
            inst = s.get(Instance, iid)
            if inst is None or inst.deleted:
                return False
            device = "/dev/vda" if root else next_device(inst, {b.device_name for b in inst.bdms})
        volume_svc = self.svc.service(VOLUME)
        try:
            reserved = volume_svc.reserve(ctx, vid, iid, device)
        except errors.TinyError as exc:
            raise BuildAborted(f"Build of instance {iid} aborted: volume {vid} could not be reserved: {exc}") from None
        attachment_id = str(reserved["attachment_id"])
        connection = {**(reserved.get("connection") or {}), "read_only": bool(reserved.get("read_only"))}
        try:
            with self.svc.session() as s:
                inst = s.get(Instance, iid)
                if inst is None or inst.deleted:
                    raise BuildAborted(f"instance {iid} is gone")
                s.add(BlockDeviceMapping(
                    id=str(uuid.uuid4()), instance_uuid=iid, volume_id=vid, attachment_id=attachment_id,
                    device_name=device, tag=req.get("tag"), delete_on_termination=bool(req["delete_on_termination"]),
                    state=ATTACHING, connection=connection, generation=inst.generation, seq=index,
                    boot_index=0 if root else None, created_at=utcnow()))
                if root and info.get("volume_image_metadata"):
                    inst.doc = {**inst.doc, "image": image_from_volume(info["volume_image_metadata"])}
                inst.updated_at = utcnow()
        except BaseException as exc:
            volume_svc.attach_failed(attachment_id, f"mapping it to instance {iid} failed: {exc}")
            if isinstance(exc, BuildAborted) and self._gone(iid):
                return False
            raise
        return True

    # --- delete ---------------------------------------------------------------------------------

    def release_unmapped(self, inst: Instance, ctx: RequestContext) -> None:
        """Volumes the build made but never mapped (it failed or the server went first): deleted when the
        mapping said delete_on_termination, else left available, as Nova leaves them."""
        mapped = {b.volume_id for b in inst.bdms}
        volume_svc = None
        for req in inst.doc.get("bdm_requests") or []:
            vid = req.get("volume_id")
            if not req.get("created") or not vid or vid in mapped or not req.get("delete_on_termination"):
                continue
            volume_svc = volume_svc or self.svc.service(VOLUME)
            try:
                volume_svc.delete_volume(ctx, vid)
            except errors.NotFound:
                pass
            except Exception:
                log.exception("deleting volume %s made for deleted instance %s failed", vid, inst.id)
