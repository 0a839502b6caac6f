"""Who is asking and what they may read: a signed (network, source IP) names a port, the port names the
instance, and only that instance's data is served. Holds no tables: it asks the network and compute services."""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Mapping
from typing import Any

from tinystack.config import Config
from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.metadata import secret
from tinystack.metadata import settings as settings_mod

log = logging.getLogger(__name__)

# The metadata service reads ports of every project, as Nova's metadata API does with its admin context.
SERVICE_CONTEXT = RequestContext(user_id="tinystack-metadata", user_name="metadata", roles=("admin", "service"),
                                 system_scope="all")

FORWARDED_FOR = "X-Forwarded-For"
NETWORK_ID = "X-Tinystack-Network-ID"
SIGNATURE = "X-Tinystack-Signature"
SIGNATURE_TIME = "X-Tinystack-Signature-Time"


class MetadataService:
    def __init__(self, config: Config, services: Mapping[str, Any]) -> None:
        self.settings = settings_mod.load(config)
        self.secret = secret.load_or_create(self.settings.secret_file)
        # rt.services: looked up on each request, so services registered after this one are found too.
        self.services = services

    def config_drive_files(self, instance: Mapping[str, Any]) -> dict[str, str]:
        """The config drive tree for an instance dict, base64-encoded as the compute doc carries it."""
        from tinystack.metadata import configdrive

        return configdrive.encoded(configdrive.files_for(instance, self.settings.dhcp_domain))

    def caller(self, headers: Mapping[str, str], method: str, path: str, timeless_ok: bool = False) -> tuple[str, str]:
        """(network id, source IP) of a request a proxy signed for this method and path within the last minute;
        403 for anything else. ``timeless_ok``: also the older signature without a time (the unix socket only)."""
        network_id = (headers.get(NETWORK_ID) or "").strip()
        source_ip = (headers.get(FORWARDED_FOR) or "").split(",")[0].strip()
        signature = headers.get(SIGNATURE) or ""
        stamp = headers.get(SIGNATURE_TIME)
        if not network_id or not source_ip or not signature:
            raise errors.Forbidden("This request was not forwarded by a metadata proxy: it is not signed.")
        if stamp is None and timeless_ok:
            valid = secret.verify(self.secret, network_id, source_ip, signature)
        elif stamp is None:
            raise errors.Forbidden(f"A relayed metadata request needs a signature time ({SIGNATURE_TIME}).")
        else:
            valid = secret.verify_request(self.secret, network_id, source_ip, stamp, method, path, signature,
                                          time.time())
        if not valid:
            log.warning("metadata request with an invalid or expired signature for %s on network %s", source_ip,
                        network_id)
            raise errors.Forbidden("Invalid or expired proxy request signature.")
        return network_id, source_ip

    def _service(self, name: str) -> Any:
        svc = self.services.get(name)
        if svc is None:
            raise errors.ServiceUnavailable(f"The {name} service is not available in this cloud.")
        return svc

    def port_for(self, network_id: str, source_ip: str) -> dict[str, Any]:
        """The instance port holding ``source_ip`` on ``network_id``; 404 when there is none."""
        ports = self._service("network").list_ports(
            SERVICE_CONTEXT, {"network_id": network_id, "fixed_ips": [f"ip_address={source_ip}"]})
        matches = [p for p in ports
                   if p.get("network_id") == network_id
                   and str(p.get("device_owner") or "").startswith("compute:") and p.get("device_id")
                   and any(ip.get("ip_address") == source_ip for ip in p.get("fixed_ips") or [])]
        if len(matches) != 1:
            raise errors.NotFound(f"No instance found with IP {source_ip} on network {network_id}.")
        return matches[0]

    async def instance_for(self, network_id: str, source_ip: str) -> dict[str, Any]:
        """The metadata dict of the instance behind a signed request; never another project's instance."""
        port = self.port_for(network_id, source_ip)
        inst = await _call(self._service("compute").get_instance_metadata, port["device_id"])
        if not inst:
            raise errors.NotFound(f"No instance found with IP {source_ip} on network {network_id}.")
        # A port may name any device_id; only a port of the instance's own project speaks for it.
        if port.get("project_id") != inst.get("project_id"):
            log.warning("port %s (project %s) claims instance %s of project %s", port.get("id"),
                        port.get("project_id"), inst.get("uuid"), inst.get("project_id"))
            raise errors.NotFound(f"No instance found with IP {source_ip} on network {network_id}.")
        return dict(inst)

    async def set_password(self, instance_id: str, password: str) -> None:
        """Store the guest's (encrypted) password once, as Nova does; a second POST is a 409."""
        compute = self._service("compute")
        setter = getattr(compute, "set_instance_password", None)
        if setter is None:
            raise errors.ServiceUnavailable("The compute service cannot store instance passwords.")
        if not await _call(setter, instance_id, password):
            raise errors.Conflict("Password already set.")


async def _call(fn: Any, *args: Any) -> Any:
    result = fn(*args)
    return await result if inspect.isawaitable(result) else result
