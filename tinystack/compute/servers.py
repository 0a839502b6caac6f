"""Servers: create (validate everything up front, write BUILD rows, hand off to the conductor), list with
Nova's filters, show, update and delete."""

from __future__ import annotations

import base64
import binascii
import builtins
import ipaddress
import re
import secrets
import string
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from tinystack.compute import flavors, states
from tinystack.compute.bootvolumes import Plan
from tinystack.compute.models import Instance, KeyPair, ServerGroup, utcnow
from tinystack.compute.schemas import as_bool
from tinystack.core import desired, errors
from tinystack.core.auth import RequestContext
from tinystack.core.web import Version
from tinystack.image.interface import IMAGE

if TYPE_CHECKING:
    from tinystack.compute.service import ComputeService

P = "os_compute_api"
GiB = 1024**3


def not_found(server_id: str) -> errors.NotFound:
    return errors.NotFound(f"Instance {server_id} could not be found.")


def hostname_for(name: str) -> str:
    """Nova's sanitize_hostname: lower case, [a-z0-9-] only, at most 63 characters."""
    host = re.sub(r"[^a-z0-9-]+", "-", name.lower().replace("_", "-")).strip("-.")[:63]
    return host or "server"


def admin_password() -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(12))


class Servers:
    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc

    # --- lookups --------------------------------------------------------------------------------

    def find(self, s: Session, ctx: RequestContext, server_id: str, rule: str | None = None) -> Instance:
        """The live server if the caller may act on it; another project's server is a 404."""
        inst = s.get(Instance, server_id)
        if inst is None or inst.deleted:
            raise not_found(server_id)
        if rule is not None and not self.svc.allowed(ctx, rule, {"project_id": inst.project_id}):
            raise not_found(server_id)
        return inst

    def get(self, ctx: RequestContext, server_id: str) -> Instance:
        with self.svc.session() as s:
            return self.find(s, ctx, server_id, f"{P}:servers:show")

    # --- create ---------------------------------------------------------------------------------

    def create(self, ctx: RequestContext, body: dict[str, Any], hints: dict[str, Any], version: Version,
               request_id: str) -> tuple[list[Instance], str]:
        """Validate, check quota, write the BUILD rows; returns them and the admin password."""
        self.svc.enforce(ctx, f"{P}:servers:create")
        flavor_ref = str(body["flavorRef"]).rstrip("/").rsplit("/", 1)[-1]
        with self.svc.session() as s:
            try:
                flavor = self.svc.flavors.find(s, ctx, flavor_ref)
            except errors.NotFound:
                raise errors.BadRequest(f"Flavor {flavor_ref} could not be found.") from None
            if flavor.disabled:
                raise errors.BadRequest(f"Flavor {flavor_ref} is disabled.")
            fsnap = flavors.snapshot(flavor)
        plan = self._plan_block_devices(ctx, body, fsnap)
        if plan.volume_backed:
            image: dict[str, Any] = plan.image or (self.image_info(ctx, str(body["imageRef"]))
                                                   if body.get("imageRef") else {})
        else:
            if not plan.image_ref:
                raise errors.BadRequest("Missing imageRef attribute")
            image = self.image_info(ctx, plan.image_ref)
        check_image_fits(image, fsnap, volume_backed=plan.volume_backed)
        key_data = None
        if body.get("key_name"):
            with self.svc.session() as s:
                kp = s.get(KeyPair, (ctx.user_id, body["key_name"]))
                if kp is None:
                    raise errors.BadRequest("Invalid key_name provided.")
                key_data = kp.public_key
        user_data = body.get("user_data")
        if user_data is not None:
            try:
                base64.b64decode(user_data, validate=True)
            except (binascii.Error, ValueError):
                raise errors.BadRequest("User data needs to be valid base 64.") from None
        networks = body.get("networks")
        if networks is None:
            if version >= Version(2, 37):
                raise errors.BadRequest("Invalid input for field/attribute server. Value: networks is required")
            networks = "auto"
        networks = self.svc.conductor.validate_networks(ctx, networks)
        sec_groups = [g["name"] for g in body.get("security_groups", [])] or ["default"]
        self.svc.conductor.validate_security_groups(ctx, sec_groups, networks)
        az, forced_host = self.parse_az(ctx, body.get("availability_zone"))
        if body.get("host") or body.get("hypervisor_hostname"):
            self.svc.enforce(ctx, f"{P}:servers:create:forced_host")
            forced_host = str(body.get("host") or body.get("hypervisor_hostname"))
        min_count = int(body.get("min_count", 1))
        max_count = int(body.get("max_count", min_count))
        if min_count > max_count:
            raise errors.BadRequest("min_count must be <= max_count")
        if max_count > 1 and any(isinstance(n, dict) and n.get("port") for n in networks
                                 if isinstance(networks, list)):
            raise errors.BadRequest("Multiple instances can only be booted when no port is specified.")
        metadata = body.get("metadata", {})
        group_id = hints.get("group")
        admin_pass = body.get("adminPass") or admin_password()
        now = utcnow()
        reservation = "r-" + secrets.token_hex(4)
        with self.svc.session() as s:
            limit = self.svc.quotas.limit_for(s, ctx.project_id or "", "metadata_items")
            if 0 <= limit < len(metadata):
                raise errors.OverQuota("Quota exceeded for metadata_items: Requested "
                                       f"{len(metadata)}, but already used 0 of {limit} metadata_items")
            if group_id is not None:
                group = s.get(ServerGroup, group_id)
                if group is None or (group.project_id != ctx.project_id and not ctx.is_admin):
                    raise errors.BadRequest(f"Invalid server group {group_id}.")
            count = self.svc.quotas.check_instances(s, ctx.project_id or "", fsnap, min_count, max_count)
            rows = []
            for index in range(count):
                name = body["name"] if count == 1 else f"{body['name']}-{index + 1}"
                inst = Instance(
                    id=str(uuid.uuid4()), name=name, hostname=body.get("hostname") or hostname_for(name),
                    description=body.get("description"), project_id=ctx.project_id or "", user_id=ctx.user_id,
                    image_ref="" if plan.volume_backed else image["id"], flavor=fsnap, key_name=body.get("key_name"),
                    key_data=key_data,
                    vm_state=states.BUILDING, task_state="scheduling", power_state=states.NOSTATE,
                    availability_zone=az, user_data=user_data, config_drive=as_bool(body.get("config_drive")),
                    meta=dict(metadata), tags=list(dict.fromkeys(body.get("tags", []))),
                    security_groups=sec_groups, requested_networks=networks, ports=[], addresses={},
                    access_ip_v4=body.get("accessIPv4", ""), access_ip_v6=_v6(body.get("accessIPv6", "")),
                    admin_pass=admin_pass, reservation_id=reservation, launch_index=index,
                    server_group_id=group_id, generation=1, observed_generation=0,
                    doc={"image": image, "power": "running", "rescue": False, "reboot": {"seq": 0, "hard": False},
                         "snapshot": None, "target": states.ACTIVE, "forced_host": forced_host,
                         "disk_config": body.get("OS-DCF:diskConfig", "MANUAL"),
                         **({"volume_backed": True} if plan.volume_backed else {}),
                         **({"bdm_requests": plan.requests} if plan.requests else {})},
                    created_at=now, updated_at=now, deleted=False)
                s.add(inst)
                rows.append(inst)
                self.svc.actions.record(s, ctx, inst.id, "create", request_id, event="conductor_schedule_and_build")
            if group_id is not None:
                group = s.get(ServerGroup, group_id)
                assert group is not None
                group.members = [*group.members, *(r.id for r in rows)]
        self.svc.conductor.build([r.id for r in rows])
        return rows, admin_pass

    def _plan_block_devices(self, ctx: RequestContext, body: dict[str, Any], flavor: dict[str, Any]) -> Plan:
        count = int(body.get("max_count", body.get("min_count", 1)))
        if not body.get("block_device_mapping_v2"):
            return Plan(image_ref=str(body.get("imageRef") or ""))
        return self.svc.bootvolumes.plan(ctx, body, flavor, count)

    def image_info(self, ctx: RequestContext, image_ref: str) -> dict[str, Any]:
        """The image as the instance doc describes it; an unknown or unusable image is a 400."""
        image_id = image_ref.rstrip("/").rsplit("/", 1)[-1]
        try:
            image = self.svc.service(IMAGE).get(ctx, image_id)
        except errors.NotFound:
            raise errors.BadRequest(f"Image {image_id} could not be found.") from None
        if image.status != "active":
            raise errors.BadRequest(f"Image {image_id} is not active.")
        props = {p.name: p.value for p in image.properties}
        return {"id": image.id, "name": image.name, "disk_format": image.disk_format,
                "container_format": image.container_format, "size": image.size or 0,
                "virtual_size": image.virtual_size, "checksum": image.checksum, "min_disk": image.min_disk or 0,
                "min_ram": image.min_ram or 0, "properties": props}

    def parse_az(self, ctx: RequestContext, value: str | None) -> tuple[str | None, str | None]:
        """``az``, ``az:host``, ``az::node`` or ``:host``; naming a host needs admin."""
        if not value:
            return None, None
        az, _, rest = value.partition(":")
        host = rest.strip(":") or None
        if host is not None:
            self.svc.enforce(ctx, f"{P}:servers:create:forced_host")
        if az and az not in self.svc.admin.zone_names():
            raise errors.BadRequest("The requested availability zone is not available")
        return az or None, host

    # --- list / show / update -------------------------------------------------------------------

    def list(self, ctx: RequestContext, q: dict[str, str], detail: bool) -> builtins.list[Any]:
        """Matching servers as light rows (id, name, updated_at, generation, ...); ``load`` gets full rows."""
        self.svc.enforce(ctx, f"{P}:servers:{'detail' if detail else 'index'}")
        all_tenants = "all_tenants" in q and q["all_tenants"].lower() not in ("0", "false", "off", "no")
        if all_tenants:
            self.svc.enforce(ctx, f"{P}:servers:index:get_all_tenants")
        cols = [Instance.id, Instance.name, Instance.updated_at, Instance.generation,
                Instance.observed_generation, Instance.power_state]
        if {"flavor", "ip", "ip6", "tags", "tags-any", "not-tags", "not-tags-any"} & set(q):
            cols += [Instance.flavor, Instance.addresses, Instance.tags]
        stmt = select(*cols)
        project = q.get("project_id") or q.get("tenant_id")
        if all_tenants or (ctx.is_admin and project):
            if project:
                stmt = stmt.where(Instance.project_id == project)
        else:
            stmt = stmt.where(Instance.project_id == (ctx.project_id or ""))
        since = None
        if "changes-since" in q:
            since = parse_time(q["changes-since"], "changes-since")
            stmt = stmt.where(Instance.updated_at >= since)
        if "changes-before" in q:
            stmt = stmt.where(Instance.updated_at <= parse_time(q["changes-before"], "changes-before"))
        deleted = ctx.is_admin and q.get("deleted", "").lower() in ("true", "1")
        if not deleted and since is None:
            stmt = stmt.where(Instance.deleted.is_(False))
        elif deleted:
            stmt = stmt.where(Instance.deleted.is_(True))
        if "status" in q:
            pairs = states.tasks_for(q["status"])
            if not pairs and q["status"].upper() != "DELETED":
                if ctx.is_admin:
                    raise errors.BadRequest("Invalid status value")
                return []
            conds: builtins.list[Any] = [(Instance.vm_state == vm) & (Instance.task_state.is_(None) if t is None
                                                  else Instance.task_state == t) for vm, t in pairs]
            if q["status"].upper() == "DELETED":
                conds.append(Instance.deleted.is_(True))
            stmt = stmt.where(or_(*conds))
        for key in ("host", "node", "hypervisor_hostname"):
            if key in q and ctx.is_admin:
                stmt = stmt.where(Instance.host == q[key])
        if "image" in q:
            stmt = stmt.where(Instance.image_ref == q["image"].rstrip("/").rsplit("/", 1)[-1])
        if "key_name" in q:
            stmt = stmt.where(Instance.key_name == q["key_name"])
        if "availability_zone" in q:
            stmt = stmt.where(Instance.availability_zone == q["availability_zone"])
        if "reservation_id" in q:
            stmt = stmt.where(Instance.reservation_id == q["reservation_id"])
        if "user_id" in q and ctx.is_admin:
            stmt = stmt.where(Instance.user_id == q["user_id"])
        sort_dir = q.get("sort_dir", "desc")
        if sort_dir not in ("asc", "desc"):
            raise errors.BadRequest(f"Invalid sort_dir {sort_dir}")
        col: Any = Instance.created_at
        sort_key = q.get("sort_key", "created_at")
        if sort_key in ("display_name", "name"):
            col = Instance.name
        elif sort_key in ("updated_at", "launched_at", "vm_state", "task_state", "power_state", "uuid",
                          "host", "project_id", "user_id", "availability_zone"):
            col = getattr(Instance, "id" if sort_key == "uuid" else sort_key)
        # The id breaks ties in the same direction, as Nova does: ``sort_dir=asc`` is then the exact reverse of
        # the default order, which paging backwards from a marker relies on.
        stmt = stmt.order_by(col.desc() if sort_dir == "desc" else col.asc(),
                             Instance.id.desc() if sort_dir == "desc" else Instance.id.asc())
        with self.svc.session() as s:
            rows = list(s.execute(stmt).all())
        rows = self._python_filters(rows, q)
        limit = q.get("limit")
        marker = q.get("marker")
        if marker is not None:
            for i, row in enumerate(rows):
                if row.id == marker:
                    rows = rows[i + 1:]
                    break
            else:
                raise errors.BadRequest(f"marker [{marker}] not found")
        max_limit = self.svc.settings.max_limit
        if limit is not None:
            try:
                n = int(limit)
            except ValueError:
                raise errors.BadRequest("limit param must be an integer") from None
            if n < 0:
                raise errors.BadRequest("limit param must be positive")
            rows = rows[:min(n, max_limit)]
        return rows

    def load(self, ids: builtins.list[str]) -> dict[str, Instance]:
        out: dict[str, Instance] = {}
        with self.svc.session() as s:
            for start in range(0, len(ids), 500):
                for inst in s.scalars(select(Instance).where(Instance.id.in_(ids[start:start + 500]))):
                    out[inst.id] = inst
        return out

    def _python_filters(self, rows: builtins.list[Any], q: dict[str, str]) -> builtins.list[Any]:
        """Filters SQL cannot express portably: name and ip regexes, flavor, tags."""
        if "name" in q:
            try:
                rx = re.compile(q["name"])
            except re.error:
                raise errors.BadRequest(f"Invalid name filter {q['name']!r}") from None
            rows = [r for r in rows if rx.search(r.name)]
        if "flavor" in q:
            fid = q["flavor"].rstrip("/").rsplit("/", 1)[-1]
            rows = [r for r in rows if r.flavor.get("id") == fid]
        for key, six in (("ip", False), ("ip6", True)):
            if key in q:
                try:
                    rx = re.compile(q[key])
                except re.error:
                    raise errors.BadRequest(f"Invalid {key} filter") from None
                rows = [r for r in rows if any(rx.search(a["addr"]) and (":" in a["addr"]) == six
                                               for addrs in r.addresses.values() for a in addrs)]
        if "tags" in q:
            want = set(q["tags"].split(","))
            rows = [r for r in rows if want <= set(r.tags)]
        if "tags-any" in q:
            want = set(q["tags-any"].split(","))
            rows = [r for r in rows if want & set(r.tags)]
        if "not-tags" in q:
            want = set(q["not-tags"].split(","))
            rows = [r for r in rows if not want <= set(r.tags)]
        if "not-tags-any" in q:
            want = set(q["not-tags-any"].split(","))
            rows = [r for r in rows if not want & set(r.tags)]
        return rows

    def update(self, ctx: RequestContext, server_id: str, body: dict[str, Any]) -> Instance:
        with self.svc.session() as s:
            inst = self.find(s, ctx, server_id, f"{P}:servers:update")
            if "name" in body:
                inst.name = body["name"]
            if "description" in body:
                inst.description = body["description"]
            if "hostname" in body:
                inst.hostname = body["hostname"]
            if "accessIPv4" in body:
                inst.access_ip_v4 = body["accessIPv4"]
            if "accessIPv6" in body:
                inst.access_ip_v6 = _v6(body["accessIPv6"])
            inst.updated_at = utcnow()
        return inst

    # --- delete ---------------------------------------------------------------------------------

    async def delete(self, ctx: RequestContext, server_id: str, request_id: str, force: bool = False) -> None:
        def attempt() -> None:
            with self.svc.session() as s:
                inst = self.find(s, ctx, server_id, f"{P}:servers:delete")
                self.svc.actions.check_lock(ctx, inst)
                desired.bump_or_lose(s, Instance, inst.id, inst.generation,
                                     {"task_state": "deleting", "updated_at": utcnow()})
                self.svc.actions.record(s, ctx, inst.id, "delete", request_id)

        desired.retry(attempt, what=f"Instance {server_id}")
        await self.svc.conductor.delete(server_id)


def check_image_fits(image: dict[str, Any], flavor: dict[str, Any], volume_backed: bool = False) -> None:
    """Nova's checks of a flavor against the image's minimums and size (all 400s); a volume-backed server's
    root disk is its volume, so the flavor's disk is not checked then."""
    if flavor["memory_mb"] < int(image.get("min_ram") or 0):
        raise errors.BadRequest("Flavor's memory is too small for requested image.")
    if flavor["root_gb"] > 0 and not volume_backed:
        if flavor["root_gb"] < image.get("min_disk", 0):
            raise errors.BadRequest("Flavor's disk is too small for requested image. Flavor disk is "
                                    f"{flavor['root_gb'] * GiB} bytes, minimum required is "
                                    f"{image['min_disk'] * GiB} bytes.")
        size = max(image.get("size") or 0, image.get("virtual_size") or 0)
        if size > flavor["root_gb"] * GiB:
            raise errors.BadRequest(f"Flavor's disk is too small for requested image. Flavor disk is "
                                    f"{flavor['root_gb'] * GiB} bytes, image is {size} bytes.")


def parse_time(text: str, name: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise errors.BadRequest(f"Invalid value for {name}: {text!r} is not an ISO 8601 time.") from None
    if value.tzinfo is not None:
        from datetime import UTC

        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _v6(address: str | None) -> str:
    """accessIPv6 in its canonical (compressed) form, as Nova stores it; the schema already checked it."""
    if not address:
        return ""
    try:
        return ipaddress.IPv6Address(address).compressed
    except ValueError:
        return address
