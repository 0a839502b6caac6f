"""The compute side of networking: check requested networks and ports, create and bind ports for a host,
render ``addresses``, and release ports on delete — all through the network service's Python API."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from tinystack.compute.models import Instance
from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.core.service import acting_for
from tinystack.network.interface import NetworkAPI

log = logging.getLogger(__name__)


def _ctx(inst: Instance) -> RequestContext:
    """Acting for the instance's owner with admin rights (binding:host_id is admin-only in Neutron)."""
    return acting_for(inst.user_id, inst.project_id)


class NetBinder:
    """Built with the cloud's network service (``lookup`` gives it, or None when the cloud runs none)."""

    def __init__(self, lookup: Callable[[], NetworkAPI | None]) -> None:
        self._lookup = lookup

    @property
    def available(self) -> bool:
        return self._lookup() is not None

    @property
    def network(self) -> NetworkAPI:
        found = self._lookup()
        if found is None:
            raise errors.ServiceUnavailable("The network service is not available in this cloud.")
        return found

    def validate(self, ctx: RequestContext, networks: Any) -> list[dict[str, Any]]:
        """Resolve the request into ``[{"network_id", "fixed_ip"?} | {"port_id"}]``; bad ids are 400s."""
        if networks == "none":
            return []
        if not self.available:
            if networks == "auto":
                return []
            raise errors.BadRequest("Networking is not available in this cloud; use networks 'none'.")
        if networks == "auto":
            return self._auto(ctx)
        out: list[dict[str, Any]] = []
        for item in networks:
            if item.get("port"):
                try:
                    port = self.network.show_port(ctx, item["port"])
                except errors.NotFound:
                    raise errors.BadRequest(f"Port {item['port']} could not be found.") from None
                if port.get("device_id"):
                    raise errors.Conflict(f"Port {item['port']} is still in use.")
                out.append({"port_id": port["id"]})
                continue
            if not item.get("uuid"):
                raise errors.BadRequest("Bad networks format: network uuid is not in proper format")
            try:
                net = self.network.show_network(ctx, item["uuid"])
            except errors.NotFound:
                raise errors.BadRequest(f"Network {item['uuid']} could not be found.") from None
            if not net.get("subnets"):
                raise errors.BadRequest(f"Network {net['id']} requires a subnet in order to boot instances on.")
            entry: dict[str, Any] = {"network_id": net["id"]}
            if item.get("fixed_ip"):
                entry["fixed_ip"] = item["fixed_ip"]
            out.append(entry)
        return out

    def _auto(self, ctx: RequestContext) -> list[dict[str, Any]]:
        """Nova's choice for ``auto`` (and pre-2.37 requests without networks): the one usable network."""
        nets = [n for n in self.network.list_networks(ctx, {})
                if not n.get("router:external") and n.get("subnets")]
        own = [n for n in nets if n.get("project_id") == ctx.project_id]
        pick = own or [n for n in nets if n.get("shared")]
        if len(pick) > 1:
            raise errors.Conflict("Multiple possible networks found, use a Network ID to be more specific.")
        return [{"network_id": pick[0]["id"]}] if pick else []

    def validate_security_groups(self, ctx: RequestContext, names: list[str], networks: Any) -> None:
        if not self.available or names == ["default"]:
            return
        groups = self.network.list(ctx, "security_groups", {}, "").get("security_groups", [])
        known = {g["name"] for g in groups} | {g["id"] for g in groups}
        for name in names:
            if name not in known:
                raise errors.BadRequest(f"Security group {name} not found for project {ctx.project_id}.")

    def _group_ids(self, ctx: RequestContext, names: list[str]) -> list[str] | None:
        groups = self.network.list(ctx, "security_groups", {}, "").get("security_groups", [])
        ids = [g["id"] for g in groups if g["name"] in names or g["id"] in names]
        return ids or None

    def bind_all(self, inst: Instance, host: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        requested = inst.requested_networks or []
        if not requested:
            return [], {}
        ctx = _ctx(inst)
        binding = {"device_id": inst.id, "device_owner": f"compute:{inst.availability_zone or 'nova'}",
                   "binding:host_id": host}
        made: list[dict[str, Any]] = []
        try:
            for req in requested:
                if "port_id" in req:
                    port = self.network.update_port(ctx, req["port_id"], {"port": binding})
                    made.append(self._entry(port, created=False))
                    continue
                body: dict[str, Any] = {"network_id": req["network_id"], "project_id": inst.project_id, **binding}
                if req.get("fixed_ip"):
                    body["fixed_ips"] = [{"ip_address": req["fixed_ip"]}]
                groups = self._group_ids(ctx, inst.security_groups)
                if groups:
                    body["security_groups"] = groups
                port = self.network.create_port(ctx, {"port": body})
                made.append(self._entry(port, created=True))
        except Exception:
            self._release(ctx, made)
            raise
        return made, self.addresses(ctx, made)

    @staticmethod
    def _entry(port: dict[str, Any], created: bool) -> dict[str, Any]:
        return {"port_id": port["id"], "created": created, "network_id": port["network_id"],
                "mac_address": port["mac_address"], "fixed_ips": port.get("fixed_ips", [])}

    def addresses(self, ctx: RequestContext, ports: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, list[dict[str, Any]]] = {}
        names: dict[str, str] = {}
        for p in ports:
            net_id = p["network_id"]
            if net_id not in names:
                try:
                    names[net_id] = self.network.show_network(ctx, net_id).get("name") or net_id
                except errors.NotFound:
                    names[net_id] = net_id
            for ip in p.get("fixed_ips", []):
                addr = ip["ip_address"]
                out.setdefault(names[net_id], []).append({
                    "version": 6 if ":" in addr else 4, "addr": addr, "OS-EXT-IPS:type": "fixed",
                    "OS-EXT-IPS-MAC:mac_addr": p["mac_address"]})
            for fip in self._floating(ctx, p["port_id"]):
                out.setdefault(names[net_id], []).append({
                    "version": 4, "addr": fip, "OS-EXT-IPS:type": "floating",
                    "OS-EXT-IPS-MAC:mac_addr": p["mac_address"]})
        return out

    def _floating(self, ctx: RequestContext, port_id: str) -> list[str]:
        try:
            fips = self.network.list(ctx, "floatingips", {"port_id": [port_id]}, "").get("floatingips", [])
        except (errors.TinyError, KeyError):
            return []
        return [f["floating_ip_address"] for f in fips if f.get("floating_ip_address")]

    def refresh(self, inst: Instance) -> dict[str, Any] | None:
        """Current ports of a server as ``addresses`` (floating IPs change without compute knowing)."""
        if not inst.ports or not self.available:
            return None
        ctx = _ctx(inst)
        ports = []
        for p in inst.ports:
            try:
                ports.append(self._entry(self.network.show_port(ctx, p["port_id"]), p.get("created", False)))
            except errors.NotFound:
                continue
        return self.addresses(ctx, ports)

    def floating_by_port(self) -> dict[str, set[str]] | None:
        """Every floating IP address by the port it points at, in one query (None without networking)."""
        if not self.available:
            return None
        out: dict[str, set[str]] = {}
        fips = self.network.list(acting_for("nova", None), "floatingips", {}, "").get("floatingips", [])
        for fip in fips:
            if fip.get("port_id") and fip.get("floating_ip_address"):
                out.setdefault(fip["port_id"], set()).add(fip["floating_ip_address"])
        return out

    def set_migrating_to(self, inst: Instance, host: str | None) -> None:
        """During a live migration the ports are wired on both nodes: Neutron's ``binding:profile``
        ``migrating_to`` names the destination, whose network agent then plugs them too. None clears it."""
        self._bind(inst, None, host)

    def rebind(self, inst: Instance, host: str) -> None:
        """The server now runs on ``host``: its ports are bound there, and no longer migrating."""
        self._bind(inst, host, None)

    def _bind(self, inst: Instance, host: str | None, migrating_to: str | None) -> None:
        if not inst.ports or not self.available:
            return
        ctx = _ctx(inst)
        for p in inst.ports:
            try:
                port = self.network.show_port(ctx, p["port_id"])
            except errors.NotFound:
                log.warning("port %s of %s is gone", p["port_id"], inst.id)
                continue
            profile = dict(port.get("binding:profile") or {})
            wanted = {k: v for k, v in profile.items() if k != "migrating_to"}
            if migrating_to:
                wanted["migrating_to"] = migrating_to
            update: dict[str, Any] = {}
            if wanted != profile:
                update["binding:profile"] = wanted
            if host is not None and port.get("binding:host_id") != host:
                update["binding:host_id"] = host
            if update:
                self.network.update_port(ctx, p["port_id"], {"port": update})

    def release_strays(self, inst: Instance) -> None:
        """Ports an interrupted build made for ``inst``: the process died after creating them and before the
        server recorded them (or while it waited for boot volumes). The build starts its networking over, so
        they go; kept, nothing would ever delete them or free their IPs. The user's own ports are bound again."""
        if not self.available:
            return
        ctx = _ctx(inst)
        own = {r["port_id"] for r in inst.requested_networks or [] if "port_id" in r}
        for port in self.network.list(ctx, "ports", {"device_id": [inst.id]}, "").get("ports", []):
            if port["id"] not in own and str(port.get("device_owner") or "").startswith("compute:"):
                log.info("instance %s: deleting port %s of an interrupted build", inst.id, port["id"])
                with contextlib.suppress(errors.NotFound):
                    self.network.delete_port(ctx, port["id"])

    def unbind_all(self, inst: Instance) -> None:
        self.release(inst, inst.ports)

    def release(self, inst: Instance, ports: list[dict[str, Any]]) -> None:
        """Give back these ports of ``inst``: the ones compute made are deleted, the user's own unbound."""
        if ports and self.available:
            self._release(_ctx(inst), ports)

    def own_addresses(self, inst: Instance) -> dict[str, Any]:
        """``addresses`` of the instance's ports, read as its owner with admin rights."""
        return self.addresses(_ctx(inst), inst.ports)

    def _release(self, ctx: RequestContext, ports: list[dict[str, Any]]) -> None:
        for p in ports:
            try:
                if p.get("created"):
                    self.network.delete_port(ctx, p["port_id"])
                else:
                    self.network.update_port(ctx, p["port_id"], {"port": {
                        "device_id": "", "device_owner": "", "binding:host_id": ""}})
            except errors.NotFound:
                pass

    def attach(self, inst: Instance, req: dict[str, Any]) -> dict[str, Any]:
        """os-interface: one more port on a running server."""
        _ctx(inst)
        made, _ = self.bind_all(_Shim(inst, [req]), inst.host or "")  # type: ignore[arg-type]
        return made[0] if made else {}

    def set_security_groups(self, inst: Instance, names: list[str]) -> None:
        if not self.available:
            return
        ctx = _ctx(inst)
        ids = self._group_ids(ctx, names) or []
        for p in inst.ports:
            self.network.update_port(ctx, p["port_id"], {"port": {"security_groups": ids}})


class _Shim:
    """An instance seen with other requested networks (attaching one interface)."""

    def __init__(self, inst: Instance, requested: list[dict[str, Any]]) -> None:
        self._inst = inst
        self.requested_networks = requested

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inst, name)
