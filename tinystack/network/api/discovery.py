"""Neutron's discovery documents: the versions list at ``/``, the resources at ``/v2.0`` and the
extensions clients and Tempest check for (only those this service really implements)."""

from __future__ import annotations

from aiohttp import web

from tinystack.core import errors
from tinystack.core.web import Route, json_response

UPDATED = "2024-01-01T00:00:00-00:00"
# alias → name; each one is implemented by this service.
EXTENSIONS = {
    "address-scope": "Address scope",
    "agent": "agent",
    "allowed-address-pairs": "Allowed Address Pairs",
    "availability_zone": "Availability Zone",
    "binding": "Port Binding",
    "default-subnetpools": "Default Subnetpools",
    "dns-integration": "DNS Integration",
    "external-net": "Neutron external network",
    "ext-gw-mode": "Neutron L3 Configurable external gateway mode",
    "fip-port-details": "Floating IP Port Details Extension",
    "extraroute": "Neutron Extra Route",
    "extra_dhcp_opt": "Neutron Extra DHCP options",
    "net-mtu": "Network MTU",
    "network-ip-availability": "Network IP Availability",
    "pagination": "Pagination support",
    "port-security": "Port Security",
    "project-id": "project_id field enabled",
    "provider": "Provider Network",
    "quotas": "Quota management support",
    "quota_details": "Quota details management support",
    "router": "Neutron L3 Router",
    "security-group": "security-group",
    "segment": "Segment",
    "service-type": "Neutron Service Type Management",
    "sorting": "Sorting support",
    "standard-attr-description": "standard-attr-description",
    "standard-attr-revisions": "Resource revision numbers",
    "standard-attr-tag": "Tag support for resources with standard attribute: subnet, trunk, network_segment_range, "
                         "router, network, policy, subnetpool, port, security_group, floatingip",
    "standard-attr-timestamp": "Resource timestamps",
    "subnet_allocation": "Subnet Allocation",
    "tag-ext": "Tag support for resources: subnet, subnetpool, port, router",
    "trunk": "Trunk Extension",
    "trunk-details": "Trunk port details",
}
RESOURCES = ("network", "subnet", "subnetpool", "port", "router", "floatingip", "security_group",
             "security_group_rule", "quota", "agent", "network_ip_availability", "availability_zone",
             "service_provider", "segment", "address_scope", "trunk")


def _base(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def _extension(alias: str) -> dict[str, object]:
    return {"alias": alias, "name": EXTENSIONS[alias], "description": EXTENSIONS[alias], "updated": UPDATED,
            "links": []}


async def versions(request: web.Request) -> web.Response:
    return json_response({"versions": [{"id": "v2.0", "status": "CURRENT",
                                        "links": [{"href": f"{_base(request)}/v2.0/", "rel": "self"}]}]})


async def resources(request: web.Request) -> web.Response:
    base = f"{_base(request)}/v2.0"
    out = []
    for name in RESOURCES:
        collection = "network_ip_availabilities" if name == "network_ip_availability" else f"{name}s"
        hyphenated = name.startswith(("security", "network_ip", "service", "address"))
        segment = collection.replace("_", "-") if hyphenated else collection
        out.append({"name": name, "collection": collection,
                    "links": [{"href": f"{base}/{segment}", "rel": "self"}]})
    return json_response({"resources": out})


async def extensions(request: web.Request) -> web.Response:
    return json_response({"extensions": [_extension(a) for a in sorted(EXTENSIONS)]})


async def extension(request: web.Request) -> web.Response:
    alias = request.match_info["alias"]
    if alias not in EXTENSIONS:
        raise errors.NotFound(f"Extension with alias {alias} does not exist", type="HTTPNotFound")
    return json_response({"extension": _extension(alias)})


def discovery_routes() -> list[Route]:
    return [Route("GET", "/", versions, public=True), Route("GET", "/v2.0", resources),
            Route("GET", "/v2.0/", resources), Route("GET", "/v2.0/extensions", extensions),
            Route("GET", "/v2.0/extensions/{alias}", extension)]
