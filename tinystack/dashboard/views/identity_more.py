"""Identity: Domains and Groups (with their members) for administrators, and Application Credentials, which every
user manages for themselves (the secret is shown once, when one is created), through Keystone's v3 API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tinystack.dashboard.views.common import gather, list_all
from tinystack.dashboard.web import FormError, Page, api, form, redirect, render, required, session

DOMAINS = "/identity/domains/"
GROUPS = "/identity/groups/"
APP_CREDS = "/identity/application_credentials/"


async def _all(request: web.Request, path: str, key: str) -> list[dict[str, Any]]:
    items = await list_all(api(request), "identity", path, key, paged=False)
    return sorted(items, key=lambda x: x.get("name") or "")


# --- Domains -----------------------------------------------------------------------------------------------

async def domains(request: web.Request) -> web.StreamResponse:
    return render(request, "domains.html", title="Domains", domains=await _all(request, "/domains", "domains"))


async def create_domain(request: web.Request) -> web.StreamResponse:
    fields = await form(request)
    required(fields, "name")
    body = {"name": fields["name"].strip(), "description": fields.get("description", "").strip(),
            "enabled": fields.get("enabled", "on") == "on"}
    domain = (await api(request).post("identity", "/domains", {"domain": body}))["domain"]
    session(request).flash("success", f"Created domain {domain['name']}.")
    raise redirect(DOMAINS)


async def domain_action(request: web.Request) -> web.StreamResponse:
    """Enable, Disable and Delete (Keystone deletes only a disabled domain: Delete disables it first)."""
    fields = await form(request)
    did, name = request.match_info["domain_id"], fields.get("action", "")
    a = api(request)
    if name in ("enable", "disable"):
        await a.patch("identity", f"/domains/{did}", {"domain": {"enabled": name == "enable"}}, "application/json")
    elif name == "delete":
        domain = (await a.get("identity", f"/domains/{did}"))["domain"]
        if domain.get("enabled"):
            await a.patch("identity", f"/domains/{did}", {"domain": {"enabled": False}}, "application/json")
        await a.delete("identity", f"/domains/{did}")
    else:
        raise FormError(f"Unknown action {name!r}.")
    session(request).flash("success", f"{name.capitalize()}: done for domain {did}.")
    raise redirect(DOMAINS)


# --- Groups ------------------------------------------------------------------------------------------------

async def groups(request: web.Request) -> web.StreamResponse:
    return render(request, "groups.html", title="Groups", groups=await _all(request, "/groups", "groups"))


async def create_group(request: web.Request) -> web.StreamResponse:
    fields = await form(request)
    required(fields, "name")
    body = {"name": fields["name"].strip(), "description": fields.get("description", "").strip(),
            "domain_id": fields.get("domain_id") or "default"}
    group = (await api(request).post("identity", "/groups", {"group": body}))["group"]
    session(request).flash("success", f"Created group {group['name']}.")
    raise redirect(f"{GROUPS}{group['id']}/")


async def group_detail(request: web.Request) -> web.StreamResponse:
    gid = request.match_info["group_id"]
    a = api(request)
    group, members, users = await gather(a.get("identity", f"/groups/{gid}"),
                                         list_all(a, "identity", f"/groups/{gid}/users", "users", paged=False),
                                         _all(request, "/users", "users"))
    member_ids = {u["id"] for u in members}
    return render(request, "group_detail.html", title=f"Group: {group['group']['name']}", group=group["group"],
                  members=sorted(members, key=lambda u: u.get("name") or ""),
                  others=[u for u in users if u["id"] not in member_ids])


async def group_action(request: web.Request) -> web.StreamResponse:
    """Manage Members (add, remove) and Delete Group."""
    fields = await form(request)
    gid, name = request.match_info["group_id"], fields.get("action", "")
    a = api(request)
    if name in ("add_member", "remove_member"):
        required(fields, "user")
        user = fields["user"].strip()
        if "/" in user:
            raise FormError("Choose a user.")
        call = a.put if name == "add_member" else a.delete
        await call("identity", f"/groups/{gid}/users/{user}")
    elif name == "delete":
        await a.delete("identity", f"/groups/{gid}")
        session(request).flash("success", "Deleted group.")
        raise redirect(GROUPS)
    else:
        raise FormError(f"Unknown action {name!r}.")
    session(request).flash("success", f"{name.replace('_', ' ').capitalize()}: done.")
    raise redirect(f"{GROUPS}{gid}/")


# --- Application Credentials -------------------------------------------------------------------------------

async def app_creds(request: web.Request) -> web.StreamResponse:
    sess = session(request)
    items = await _all(request, f"/users/{sess.user_id}/application_credentials", "application_credentials")
    return render(request, "app_creds.html", title="Application Credentials", creds=items, roles=sess.roles)


def expires_at(text: str) -> str | None:
    """The form's expiry (a date, or a date and time, UTC) as Keystone's ISO 8601; empty: never expires."""
    text = text.strip()
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise FormError("Expiration must be a date (YYYY-MM-DD) or a date and time (YYYY-MM-DDTHH:MM).") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if when <= datetime.now(UTC):
        raise FormError("Expiration must be in the future.")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000000")


def app_cred_body(fields: dict[str, str], roles_chosen: list[str], own_roles: list[str]) -> dict[str, Any]:
    required(fields, "name")
    body: dict[str, Any] = {"name": fields["name"].strip(), "description": fields.get("description", "").strip() or None,
                            "expires_at": expires_at(fields.get("expires_at", "")),
                            "unrestricted": fields.get("unrestricted") == "on"}
    unknown = [r for r in roles_chosen if r not in own_roles]
    if unknown:
        raise FormError(f"You do not have the role {unknown[0]!r} in this project.")
    if roles_chosen:
        body["roles"] = [{"name": r} for r in roles_chosen]
    return body


async def create_app_cred(request: web.Request) -> web.StreamResponse:
    """Create Application Credential: the answer's secret is shown on this one page and kept nowhere."""
    sess = session(request)
    fields = await form(request)
    data = await request.post()
    chosen = [v for v in data.getall("roles", []) if isinstance(v, str)]
    body = app_cred_body(fields, chosen, sess.roles)
    cred = (await api(request).post("identity", f"/users/{sess.user_id}/application_credentials",
                                    {"application_credential": body}))["application_credential"]
    return render(request, "app_cred_created.html", title="Application Credential", cred=cred)


async def delete_app_cred(request: web.Request) -> web.StreamResponse:
    await form(request)
    sess = session(request)
    await api(request).delete("identity", f"/users/{sess.user_id}/application_credentials/"
                                          f"{request.match_info['cred_id']}")
    sess.flash("success", "Deleted application credential.")
    raise redirect(APP_CREDS)


PAGES = [
    Page("GET", DOMAINS, domains, admin=True),
    Page("POST", DOMAINS + "create/", create_domain, admin=True),
    Page("POST", DOMAINS + "{domain_id}/action", domain_action, admin=True),
    Page("GET", GROUPS, groups, admin=True),
    Page("POST", GROUPS + "create/", create_group, admin=True),
    Page("GET", GROUPS + "{group_id}/", group_detail, admin=True),
    Page("POST", GROUPS + "{group_id}/action", group_action, admin=True),
    Page("GET", APP_CREDS, app_creds),
    Page("POST", APP_CREDS + "create/", create_app_cred),
    Page("POST", APP_CREDS + "{cred_id}/delete/", delete_app_cred),
]
