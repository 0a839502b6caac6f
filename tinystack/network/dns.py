"""DNS names of ports (the ``dns-integration`` extension): the checks on ``dns_name`` and a network's
``dns_domain`` (both end up in dnsmasq's files, so only DNS-safe text passes), and ``dns_assignment``: the
hostname, address and FQDN each fixed IP answers to on the network's DHCP/DNS server."""

from __future__ import annotations

import re
from typing import Any

from tinystack.network.common import bad

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def check_name(value: Any) -> str:
    """A port's ``dns_name``: empty, or one DNS label (the domain comes from the network or the cloud)."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or not _LABEL.match(value):
        raise bad(f"Invalid input for dns_name. Reason: '{value}' is not a valid DNS label: 1 to 63 letters, "
                  "digits or hyphens, not starting or ending with a hyphen.")
    return value.lower()


def check_domain(value: Any) -> str:
    """A network's ``dns_domain``: empty, or a domain name, stored with its trailing dot."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise bad(f"Invalid input for dns_domain. Reason: '{value}' is not a valid string.")
    name = value.rstrip(".") if value.endswith(".") and not value.endswith("..") else value
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise bad(f"Invalid input for dns_domain. Reason: '{value}' is not a valid domain name.")
    return name.lower() + "."


def domain(network_domain: str | None, default: str) -> str:
    """The domain of a network's names, with its trailing dot: the network's own, else the cloud's."""
    chosen = network_domain or default or "openstacklocal"
    return chosen if chosen.endswith(".") else chosen + "."


def hostname(dns_name: str, ip: str) -> str:
    """Neutron's default for a port without ``dns_name``: ``host-`` and the address with dashes."""
    return dns_name or "host-" + ip.replace(".", "-").replace(":", "-")


def assignment(dns_name: str, fixed_ips: list[dict[str, str]], zone: str) -> list[dict[str, str]]:
    return [{"hostname": hostname(dns_name, f["ip_address"]), "ip_address": f["ip_address"],
             "fqdn": f"{hostname(dns_name, f['ip_address'])}.{zone}"} for f in fixed_ips]
