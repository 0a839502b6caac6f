"""What every dashboard handler shares: the request's session and API client, rendering a template with the
page furniture (navigation, flashes, CSRF token), redirects, and reading a form."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import jinja2
from aiohttp import web

from tinystack.dashboard.client import Api
from tinystack.dashboard.session import Session, SessionStore

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SESSION = web.RequestKey("dashboard_session", Session)
API = web.RequestKey("dashboard_api", Api)
JINJA: web.AppKey[jinja2.Environment] = web.AppKey("dashboard_jinja", jinja2.Environment)
HTTP: web.AppKey[aiohttp.ClientSession] = web.AppKey("dashboard_http", aiohttp.ClientSession)
STORE: web.AppKey[SessionStore] = web.AppKey("dashboard_store", SessionStore)
IDENTITY_URL: web.AppKey[str] = web.AppKey("dashboard_identity_url", str)
REGION: web.AppKey[str] = web.AppKey("dashboard_region", str)
NEXT = web.RequestKey("dashboard_next", str)


@dataclass(frozen=True)
class Page:
    """One route of the dashboard. ``public``: reachable without a login; ``admin``: only with the admin role."""

    method: str
    path: str
    handler: Handler
    public: bool = False
    admin: bool = False


def session(request: web.Request) -> Session:
    return request[SESSION]


def api(request: web.Request) -> Api:
    return request[API]


# Horizon's navigation: section -> panel group -> (panel, URL). The flag: True for admins only, None for
# everyone else only, False for all.
NAV: list[tuple[str, bool | None, list[tuple[str, list[tuple[str, str]]]]]] = [
    ("Project", False, [
        ("", [("API Access", "/project/api_access/")]),
        ("Compute", [("Overview", "/project/"), ("Instances", "/project/instances/"), ("Images", "/project/images/"),
                     ("Key Pairs", "/project/key_pairs/"), ("Server Groups", "/project/server_groups/")]),
        ("Volumes", [("Volumes", "/project/volumes/"), ("Backups", "/project/backups/"),
                     ("Snapshots", "/project/snapshots/")]),
        ("Network", [("Network Topology", "/project/network_topology/"), ("Networks", "/project/networks/"),
                     ("Routers", "/project/routers/"), ("Security Groups", "/project/security_groups/"),
                     ("Floating IPs", "/project/floating_ips/")]),
        ("Object Store", [("Containers", "/project/containers/")]),
    ]),
    ("Admin", True, [
        ("", [("Overview", "/admin/")]),
        ("Compute", [("Hypervisors", "/admin/hypervisors/"), ("Host Aggregates", "/admin/aggregates/"),
                     ("Instances", "/admin/instances/"), ("Flavors", "/admin/flavors/"), ("Images", "/admin/images/")]),
        ("Volume", [("Volumes", "/admin/volumes/")]),
        ("Network", [("Networks", "/admin/networks/"), ("Routers", "/admin/routers/"),
                     ("Floating IPs", "/admin/floating_ips/")]),
        ("System", [("Defaults", "/admin/defaults/"), ("System Information", "/admin/info/")]),
    ]),
    ("Identity", True, [
        ("", [("Domains", "/identity/domains/"), ("Projects", "/identity/projects/"), ("Users", "/identity/users/"),
              ("Groups", "/identity/groups/"), ("Roles", "/identity/roles/"),
              ("Application Credentials", "/identity/application_credentials/")]),
    ]),
    # What Horizon shows a member under Identity: the projects they have a role in, and their own application
    # credentials.
    ("Identity", None, [("", [("Projects", "/identity/projects/"),
                              ("Application Credentials", "/identity/application_credentials/")])]),
]


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    env = request.app[JINJA]
    sess = request.get(SESSION)
    admin = sess is not None and sess.is_admin
    nav = [(title, groups) for title, who, groups in NAV if who is False or who is admin]
    flashes = sess.take_flashes() if sess is not None and not context.get("partial") else []
    html = env.get_template(template).render(session=sess, nav=nav, path=request.path, flashes=flashes,
                                             csrf_token=sess.csrf if sess else "", **context)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")


def redirect(location: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(location)


def back(request: web.Request, default: str) -> str:
    """Where to go after a form: its ``next`` field when it is a path on this site, else ``default``."""
    target = request.get(NEXT) or ""
    return target if local_path(target) else default


def local_path(target: str) -> bool:
    """Whether ``target`` is a path on this site: browsers read ``//host`` and ``/\\host`` as other sites."""
    return target.startswith("/") and target[1:2] not in ("/", "\\") and not any(c in target for c in "\r\n\t")


async def form(request: web.Request) -> dict[str, str]:
    """The submitted form's text fields (repeated names: the last; ``getall`` via ``form_all``)."""
    data = await request.post()
    out = {k: v for k, v in data.items() if isinstance(v, str)}
    request[NEXT] = out.get("next", "")
    return out


async def form_all(request: web.Request, name: str) -> list[str]:
    data = await request.post()
    return [v for v in data.getall(name, []) if isinstance(v, str)]


def required(fields: dict[str, str], *names: str) -> None:
    """A 400 page naming the first empty required field."""
    for name in names:
        if not fields.get(name, "").strip():
            raise FormError(f"{name.replace('_', ' ').capitalize()} is required.")


class FormError(Exception):
    """Bad input to a form, before any API call: shown like an API's error."""
