"""Project > Network > Security Groups: groups and their rules, with Horizon's rule templates (SSH, ICMP, ...)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tinystack.dashboard.views.common import list_all
from tinystack.dashboard.web import FormError, Page, api, back, form, redirect, render, required, session

BASE = "/project/security_groups/"

# Template name -> (protocol, port range min, max). "custom_*" takes the ports from the form.
TEMPLATES: dict[str, tuple[str | None, int | None, int | None]] = {
    "ssh": ("tcp", 22, 22), "icmp": ("icmp", None, None), "http": ("tcp", 80, 80), "https": ("tcp", 443, 443),
    "dns": ("udp", 53, 53), "rdp": ("tcp", 3389, 3389), "mysql": ("tcp", 3306, 3306), "all_tcp": ("tcp", 1, 65535),
    "all_udp": ("udp", 1, 65535), "all_icmp": ("icmp", None, None), "custom_tcp": ("tcp", None, None),
    "custom_udp": ("udp", None, None), "other": (None, None, None),
}
LABELS = {"ssh": "SSH", "icmp": "ALL ICMP", "http": "HTTP", "https": "HTTPS", "dns": "DNS", "rdp": "RDP",
          "mysql": "MYSQL", "all_tcp": "All TCP", "all_udp": "All UDP", "all_icmp": "All ICMP (same)",
          "custom_tcp": "Custom TCP Rule", "custom_udp": "Custom UDP Rule", "other": "Other Protocol"}


async def index(request: web.Request) -> web.StreamResponse:
    groups = await list_all(api(request), "network", "/v2.0/security-groups", "security_groups",
                            {"project_id": session(request).project_id}, paged=False)
    return render(request, "secgroups.html", title="Security Groups", groups=sorted(groups, key=lambda g: g["name"]))


async def create(request: web.Request) -> web.StreamResponse:
    fields = await form(request)
    required(fields, "name")
    group = (await api(request).post("network", "/v2.0/security-groups", {"security_group": {
        "name": fields["name"].strip(), "description": fields.get("description", "")}}))["security_group"]
    session(request).flash("success", f"Created security group {group['name']}.")
    raise redirect(f"{BASE}{group['id']}/")


async def detail(request: web.Request) -> web.StreamResponse:
    a = api(request)
    gid = request.match_info["group_id"]
    group = (await a.get("network", f"/v2.0/security-groups/{gid}"))["security_group"]
    groups = await list_all(a, "network", "/v2.0/security-groups", "security_groups",
                            {"project_id": session(request).project_id}, paged=False)
    names = {g["id"]: g["name"] for g in groups}
    return render(request, "secgroup_detail.html", title=group["name"], group=group, names=names, groups=groups,
                  templates=[(k, LABELS[k]) for k in TEMPLATES])


def rule_body(fields: dict[str, str], group_id: str) -> dict[str, Any]:
    """One ``security_group_rule`` from the Add Rule form."""
    template = fields.get("rule", "ssh")
    if template not in TEMPLATES:
        raise FormError(f"Unknown rule {template!r}.")
    protocol, low, high = TEMPLATES[template]
    body: dict[str, Any] = {"security_group_id": group_id, "direction": fields.get("direction", "ingress"),
                            "ethertype": fields.get("ethertype", "IPv4")}
    if body["direction"] not in ("ingress", "egress") or body["ethertype"] not in ("IPv4", "IPv6"):
        raise FormError("Direction must be ingress or egress, and ether type IPv4 or IPv6.")
    if template == "other":
        protocol = fields.get("ip_protocol", "").strip() or None
    if template.startswith("custom"):
        low, high = _port(fields.get("from_port") or fields.get("port")), _port(fields.get("to_port") or fields.get("port"))
        if low is None:
            raise FormError("Enter a port.")
    if template in ("icmp", "all_icmp") and (fields.get("icmp_type") or "").strip():
        low = _port(fields["icmp_type"], 255)
        high = _port(fields.get("icmp_code"), 255)
    body.update({"protocol": protocol, "port_range_min": low, "port_range_max": high if high is not None else low})
    if fields.get("remote", "cidr") == "group" and fields.get("remote_group"):
        body["remote_group_id"] = fields["remote_group"]
    elif fields.get("cidr", "").strip():
        body["remote_ip_prefix"] = fields["cidr"].strip()
    if fields.get("description", "").strip():
        body["description"] = fields["description"].strip()
    return body


def _port(text: str | None, top: int = 65535) -> int | None:
    if text is None or not text.strip():
        return None
    try:
        value = int(text)
    except ValueError:
        raise FormError(f"{text!r} is not a port number.") from None
    if not 0 <= value <= top:
        raise FormError(f"{value} is out of range (0-{top}).")
    return value


async def add_rule(request: web.Request) -> web.StreamResponse:
    fields = await form(request)
    gid = request.match_info["group_id"]
    await api(request).post("network", "/v2.0/security-group-rules", {"security_group_rule": rule_body(fields, gid)})
    session(request).flash("success", f"Added rule: {LABELS.get(fields.get('rule', ''), 'rule')}.")
    raise redirect(f"{BASE}{gid}/")


async def delete_rule(request: web.Request) -> web.StreamResponse:
    await form(request)
    gid = request.match_info["group_id"]
    await api(request).delete("network", f"/v2.0/security-group-rules/{request.match_info['rule_id']}")
    session(request).flash("success", "Deleted rule.")
    raise redirect(f"{BASE}{gid}/")


async def delete(request: web.Request) -> web.StreamResponse:
    await form(request)
    gid = request.match_info["group_id"]
    await api(request).delete("network", f"/v2.0/security-groups/{gid}")
    session(request).flash("success", "Deleted security group.")
    raise redirect(back(request, BASE))


PAGES = [
    Page("GET", BASE, index),
    Page("POST", BASE + "create/", create),
    Page("GET", BASE + "{group_id}/", detail),
    Page("POST", BASE + "{group_id}/rules/", add_rule),
    Page("POST", BASE + "{group_id}/rules/{rule_id}/delete/", delete_rule),
    Page("POST", BASE + "{group_id}/delete/", delete),
]
