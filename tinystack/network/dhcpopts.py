"""Extra DHCP options on ports (the ``extra_dhcp_opt`` extension): validation, and the update rule Neutron
uses (options merge by name and IP version; an option given with a null value is removed).

Names are dnsmasq's (``dnsmasq --help dhcp`` / ``dhcp6``) or a DHCPv4 option number, so every stored option
is one the DHCP server can serve; values go into dnsmasq's options file, so no line breaks or control bytes."""

from __future__ import annotations

from typing import Any

from tinystack.network.common import bad

V4_NAMES = frozenset((
    "netmask", "time-offset", "router", "dns-server", "log-server", "lpr-server", "boot-file-size", "domain-name",
    "swap-server", "root-path", "extension-path", "ip-forward-enable", "non-local-source-routing", "policy-filter",
    "max-datagram-reassembly", "default-ttl", "mtu", "all-subnets-local", "router-discovery", "router-solicitation",
    "static-route", "trailer-encapsulation", "arp-timeout", "ethernet-encap", "tcp-ttl", "tcp-keepalive",
    "nis-domain", "nis-server", "ntp-server", "netbios-ns", "netbios-dd", "netbios-nodetype", "netbios-scope",
    "x-windows-fs", "x-windows-dm", "T1", "T2", "vendor-class", "nis+-domain", "nis+-server", "tftp-server",
    "bootfile-name", "mobile-ip-home", "smtp-server", "pop3-server", "nntp-server", "irc-server", "user-class",
    "rapid-commit", "client-arch", "client-interface-id", "client-machine-id", "posix-timezone", "tzdb-timezone",
    "ipv6-only", "domain-search", "sip-server", "classless-static-route", "vendor-id-encap", "tftp-server-address",
    "server-ip-address"
))
V6_NAMES = frozenset((
    "sip-server-domain", "sip-server", "dns-server", "domain-search", "nis-server", "nis+-server", "nis-domain",
    "nis+-domain", "sntp-server", "information-refresh-time", "posix-timezone", "tzdb-timezone", "ntp-server",
    "bootfile-url", "bootfile-param"
))
MAX_VALUE = 255


def _version(value: Any) -> int:
    if value is None:
        return 4
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or value not in (4, 6):
        raise bad(f"Invalid input for extra_dhcp_opts. Reason: ip_version '{value}' is not in [4, 6].")
    return int(value)


def _name(value: Any, version: int) -> str:
    if not isinstance(value, str) or not value:
        raise bad("Invalid input for extra_dhcp_opts. Reason: opt_name is required and must be a string.")
    if version == 4 and value.isdigit() and 1 <= int(value) <= 254:
        return str(int(value))
    if value not in (V4_NAMES if version == 4 else V6_NAMES):
        raise bad(f"Invalid input for extra_dhcp_opts. Reason: '{value}' is not a DHCPv{version} option this "
                  "cloud's DHCP server knows.")
    return value


def _value(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_VALUE or any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise bad("Invalid input for extra_dhcp_opts. Reason: opt_value must be a string of printable characters "
                  f"of at most {MAX_VALUE}.")
    return value


def parse(raw: Any) -> list[dict[str, Any]]:
    """The request's options, checked: ``[{"opt_name", "opt_value" (None: remove), "ip_version"}]``."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise bad("Invalid input for extra_dhcp_opts. Reason: a list of options is required.")
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for opt in raw:
        if not isinstance(opt, dict) or set(opt) - {"opt_name", "opt_value", "ip_version"}:
            raise bad(f"Invalid input for extra_dhcp_opts. Reason: '{opt}' is not an option with opt_name, "
                      "opt_value and ip_version.")
        version = _version(opt.get("ip_version"))
        name = _name(opt.get("opt_name"), version)
        out[(name, version)] = {"opt_name": name, "opt_value": _value(opt.get("opt_value")), "ip_version": version}
    return list(out.values())


def created(raw: Any) -> list[dict[str, Any]]:
    """Options of a new port (a null value there means nothing)."""
    return merged([], raw)


def merged(current: list[dict[str, Any]], raw: Any) -> list[dict[str, Any]]:
    """An update's options merged into the port's: same name and version replaces, null value removes."""
    out = {(o["opt_name"], o["ip_version"]): o for o in current}
    for opt in parse(raw):
        key = (opt["opt_name"], opt["ip_version"])
        if opt["opt_value"] is None:
            out.pop(key, None)
        else:
            out[key] = opt
    return sorted(out.values(), key=lambda o: (o["ip_version"], o["opt_name"]))
