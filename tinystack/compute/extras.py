"""What hangs off a server: metadata, tags, console output, security groups, interfaces, diagnostics; and
server groups."""

from __future__ import annotations

import os
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from tinystack.compute.models import Instance, ServerGroup, utcnow
from tinystack.core import desired, errors
from tinystack.core.auth import RequestContext

if TYPE_CHECKING:
    from tinystack.compute.service import ComputeService

P = "os_compute_api"


class Subresources:
    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc

    # --- metadata and tags ----------------------------------------------------------------------
    # These merge into what the row holds, so each reads it under its lock (``SELECT ... FOR UPDATE``; SQLite has
    # one writer anyway): two API processes adding different keys at once must not both write their own copy.
    # Not a generation bump: this is no desired state for the agent, and moving the generation on every
    # metadata write would hold back the settling of a running action.

    def set_metadata(self, ctx: RequestContext, sid: str, meta: dict[str, str], replace: bool) -> dict[str, str]:
        with self.svc.session() as s:
            inst = self.svc.servers.find(s, ctx, sid, f"{P}:servers:update")
            s.refresh(inst, with_for_update=True)
            self.svc.actions.check_lock(ctx, inst)
            new = dict(meta) if replace else {**inst.meta, **meta}
            limit = self.svc.quotas.limit_for(s, inst.project_id, "metadata_items")
            if 0 <= limit < len(new):
                raise errors.OverQuota(f"Quota exceeded for metadata_items: Requested {len(new)}, but already "
                                       f"used 0 of {limit} metadata_items")
            inst.meta = new
            inst.updated_at = utcnow()
            return dict(new)

    def delete_metadata(self, ctx: RequestContext, sid: str, key: str) -> None:
        with self.svc.session() as s:
            inst = self.svc.servers.find(s, ctx, sid, f"{P}:servers:update")
            s.refresh(inst, with_for_update=True)
            self.svc.actions.check_lock(ctx, inst)
            if key not in inst.meta:
                raise errors.NotFound("Metadata item was not found")
            inst.meta = {k: v for k, v in inst.meta.items() if k != key}
            inst.updated_at = utcnow()

    def set_tags(self, ctx: RequestContext, sid: str, tags: list[str], replace: bool) -> list[str]:
        for tag in tags:
            if not tag or len(tag) > 60 or "," in tag or "/" in tag:
                raise errors.BadRequest(f"Invalid tag {tag!r}")
        with self.svc.session() as s:
            inst = self.svc.servers.find(s, ctx, sid, f"{P}:servers:update")
            s.refresh(inst, with_for_update=True)
            new = list(dict.fromkeys(tags if replace else [*inst.tags, *tags]))
            if len(new) > 50:
                raise errors.BadRequest("The number of tags exceeded the per-server limit 50")
            inst.tags = new
            inst.updated_at = utcnow()
            return new

    def delete_tag(self, ctx: RequestContext, sid: str, tag: str | None) -> None:
        with self.svc.session() as s:
            inst = self.svc.servers.find(s, ctx, sid, f"{P}:servers:update")
            s.refresh(inst, with_for_update=True)
            if tag is not None and tag not in inst.tags:
                raise errors.NotFound(f"Tag {tag} could not be found.")
            inst.tags = [t for t in inst.tags if tag is not None and t != tag]
            inst.updated_at = utcnow()

    # --- console and diagnostics ----------------------------------------------------------------

    def console_output(self, ctx: RequestContext, sid: str, length: Any) -> str:
        """The tail of the serial console log the agent reported. Read from this machine's disk, so it works
        in one-node mode or with a shared instances path; a remote agent's log is not reachable (yet)."""
        inst = self.svc.servers.get(ctx, sid)
        if inst.vm_state == "building" and not inst.console_log:
            raise errors.Conflict(f"Instance {sid} is not ready yet (building).")
        if length is not None:
            try:
                length = int(length)
            except (TypeError, ValueError):
                raise errors.BadRequest("Invalid input for field/attribute length.") from None
            if length < -1:
                raise errors.BadRequest("Invalid input for field/attribute length.")
        path = inst.console_log
        if not path or not os.path.exists(path):
            return ""
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - self.svc.settings.console_log_max_bytes))
            text = fh.read().decode("utf-8", "replace")
        lines = text.splitlines()
        if length is not None and length >= 0:
            lines = lines[-length:] if length else []
        return "\n".join(lines)

    def diagnostics(self, ctx: RequestContext, sid: str) -> dict[str, Any]:
        self.svc.enforce(ctx, f"{P}:os-server-diagnostics")
        inst = self.svc.servers.get(ctx, sid)
        if inst.vm_state == "building":
            raise errors.Conflict(f"Cannot 'get_diagnostics' instance {sid} while it is in vm_state building")
        return dict(inst.diagnostics or {})

    # --- networking -----------------------------------------------------------------------------

    def security_group(self, ctx: RequestContext, sid: str, rid: str, name: str, add: bool) -> None:
        with self.svc.session() as s:
            inst = self.svc.servers.find(s, ctx, sid, f"{P}:servers:action")
            groups = list(inst.security_groups)
            if add:
                self.svc.net.validate_security_groups(ctx, [name], None)
                if name in groups:
                    raise errors.BadRequest(f"Security group {name} is already associated with the instance {sid}")
                groups.append(name)
            else:
                if name not in groups:
                    raise errors.NotFound(f"Security group {name} not associated with the instance {sid}")
                groups.remove(name)
            inst.security_groups = groups
            self.svc.actions.record(s, ctx, sid, "addSecurityGroup" if add else "removeSecurityGroup", rid)
            self.svc.actions.finish(s, sid, "Success", inst.host)
        self.svc.net.set_security_groups(self.svc.servers.get(ctx, sid), groups)

    def interfaces(self, ctx: RequestContext, sid: str) -> list[dict[str, Any]]:
        inst = self.svc.servers.get(ctx, sid)
        return [{"port_id": p["port_id"], "net_id": p.get("network_id"), "mac_addr": p.get("mac_address"),
                 "port_state": "ACTIVE", "fixed_ips": [{"subnet_id": i.get("subnet_id"), "ip_address": i["ip_address"]}
                                                       for i in p.get("fixed_ips", [])]} for p in inst.ports]

    def attach_interface(self, ctx: RequestContext, sid: str, rid: str, req: dict[str, Any]) -> dict[str, Any]:
        inst = self.svc.servers.get(ctx, sid)
        if inst.vm_state not in ("active", "stopped", "paused") or inst.task_state is not None:
            raise errors.Conflict(f"Cannot 'attach_interface' instance {sid} while it is in vm_state {inst.vm_state}")
        items: list[dict[str, Any]] = []
        if req.get("port_id"):
            items = [{"port": req["port_id"]}]
        elif req.get("net_id"):
            items = [{"uuid": req["net_id"], **({"fixed_ip": req["fixed_ips"][0]["ip_address"]}
                                                  if req.get("fixed_ips") else {})}]
        else:
            items = self.svc.net.validate(ctx, "auto") and [{"uuid": n["network_id"]} for n in
                                                                    self.svc.net.validate(ctx, "auto")]
            if not items:
                raise errors.BadRequest("No network is available to attach an interface to.")
        resolved = self.svc.net.validate(ctx, items)
        entry = self.svc.net.attach(inst, resolved[0])
        def attempt() -> None:
            with self.svc.session() as s:
                row = self.svc.servers.find(s, ctx, sid)
                ports = [*row.ports, entry]
                desired.bump_or_lose(s, Instance, sid, row.generation, {
                    "ports": ports, "addresses": self.svc.net.addresses(ctx, ports),
                    "updated_at": utcnow()})
                self.svc.actions.record(s, ctx, sid, "attach_interface", rid)
                self.svc.actions.finish(s, sid, "Success", row.host)

        desired.retry(attempt, what=f"Instance {sid}")
        self.svc.conductor.publish_soon(sid)
        return next(i for i in self.interfaces(ctx, sid) if i["port_id"] == entry["port_id"])

    def detach_interface(self, ctx: RequestContext, sid: str, rid: str, port_id: str) -> None:
        def attempt() -> tuple[Instance, list[dict[str, Any]]]:
            with self.svc.session() as s:
                row = self.svc.servers.find(s, ctx, sid, f"{P}:servers:action")
                self.svc.actions.check_lock(ctx, row)
                gone = [p for p in row.ports if p["port_id"] == port_id]
                if not gone:
                    raise errors.NotFound(f"Port {port_id} is not attached")
                desired.bump_or_lose(s, Instance, sid, row.generation, {
                    "ports": [p for p in row.ports if p["port_id"] != port_id], "updated_at": utcnow()})
                self.svc.actions.record(s, ctx, sid, "detach_interface", rid)
                self.svc.actions.finish(s, sid, "Success", row.host)
                return row, gone

        inst, gone = desired.retry(attempt, what=f"Instance {sid}")
        self.svc.net.release(inst, gone)
        with self.svc.session() as s:
            row2 = s.get(Instance, sid)
            if row2 is not None:
                row2.addresses = self.svc.net.own_addresses(row2)
        self.svc.conductor.publish_soon(sid)

    # --- server groups --------------------------------------------------------------------------

    def groups(self, ctx: RequestContext, all_projects: bool) -> list[ServerGroup]:
        self.svc.enforce(ctx, "os_compute_api:os-server-groups:index")
        q = select(ServerGroup).order_by(ServerGroup.created_at)
        if not (all_projects and ctx.is_admin):
            q = q.where(ServerGroup.project_id == (ctx.project_id or ""))
        with self.svc.session() as s:
            return list(s.scalars(q).all())

    def group(self, ctx: RequestContext, gid: str) -> ServerGroup:
        with self.svc.session() as s:
            g = s.get(ServerGroup, gid)
            if g is None or (g.project_id != ctx.project_id and not ctx.is_admin):
                raise errors.NotFound(f"Instance group {gid} could not be found.")
            self.svc.enforce(ctx, "os_compute_api:os-server-groups:show", {"project_id": g.project_id})
            return g

    def create_group(self, ctx: RequestContext, name: str, policy: str, rules: dict[str, Any]) -> ServerGroup:
        if policy not in ("affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity"):
            raise errors.BadRequest(f"Invalid input for field/attribute policy: {policy!r}")
        self.svc.enforce(ctx, "os_compute_api:os-server-groups:create")
        with self.svc.session() as s:
            used = self.svc.quotas.usage(s, ctx.project_id or "")["server_groups"]
            limit = self.svc.quotas.limit_for(s, ctx.project_id or "", "server_groups")
            if 0 <= limit <= used:
                raise errors.OverQuota("Quota exceeded, too many server groups.")
            g = ServerGroup(id=str(uuid.uuid4()), name=name, project_id=ctx.project_id or "", user_id=ctx.user_id,
                            policy=policy, rules=rules, members=[], created_at=utcnow())
            s.add(g)
        return g

    def delete_group(self, ctx: RequestContext, gid: str) -> None:
        with self.svc.session() as s:
            g = s.get(ServerGroup, gid)
            if g is None or (g.project_id != ctx.project_id and not ctx.is_admin):
                raise errors.NotFound(f"Instance group {gid} could not be found.")
            self.svc.enforce(ctx, "os_compute_api:os-server-groups:delete", {"project_id": g.project_id})
            s.delete(g)
