"""Login (domain, user name, password), the project switcher and logout, which revokes the token."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import Any

from aiohttp import web

from tinystack.dashboard.client import Api, ApiError, endpoints
from tinystack.dashboard.session import Session
from tinystack.dashboard.web import HTTP, IDENTITY_URL, REGION, SESSION, STORE, Page, form, local_path, redirect, render


async def login_form(request: web.Request) -> web.StreamResponse:
    sess = request.get(SESSION)
    if sess is not None and sess.logged_in:
        raise redirect("/project/")
    if sess is None:
        # An anonymous session only to carry the login form's CSRF token.
        request[SESSION] = request.app[STORE].new()
    return render(request, "login.html", next=request.query.get("next", ""), domain="Default", username="")


async def login(request: web.Request) -> web.StreamResponse:
    fields = await form(request)
    domain, username, password = (fields.get(k, "").strip() for k in ("domain", "username", "password"))
    http = request.app[HTTP]
    keystone = Api(http, "", {"identity": request.app[IDENTITY_URL]})
    sess = request[SESSION]
    try:
        if not username or not password:
            raise ApiError(400, "Enter a user name and a password.")
        user = {"name": username, "password": password, "domain": {"name": domain or "Default"}}
        _, headers, body = await keystone.call("POST", "identity", "/auth/tokens", body={
            "auth": {"identity": {"methods": ["password"], "password": {"user": user}}}})
    except ApiError as exc:
        message = "Invalid credentials." if exc.status == 401 else exc.message
        sess.flash("error", message)
        return render(request, "login.html", status=exc.status if exc.status < 500 else 502,
                      next=fields.get("next", ""), domain=domain, username=username)
    unscoped = headers["X-Subject-Token"]
    new = request.app[STORE].renew(sess)
    request[SESSION] = new
    new.user_id, new.user_name = body["token"]["user"]["id"], username
    new.domain_name = domain or "Default"
    scoped = Api(http, unscoped, {"identity": request.app[IDENTITY_URL]})
    projects, preferred = await asyncio.gather(scoped.get("identity", "/auth/projects"),
                                               _default_project(scoped, new.user_id))
    new.projects = sorted(projects["projects"], key=lambda p: p["name"])
    choice = next((p for p in new.projects if p["id"] == preferred), new.projects[0] if new.projects else None)
    if choice is None:
        await _revoke(scoped, unscoped)
        request.app[STORE].drop(new)
        request.pop(SESSION)
        fresh = request.app[STORE].new()
        request[SESSION] = fresh
        fresh.flash("error", "You are not authorized for any projects.")
        raise redirect("/auth/login/")
    new.unscoped = unscoped
    await _scope(request, new, unscoped, choice["id"])
    nxt = fields.get("next", "")
    raise redirect(nxt if local_path(nxt) else "/project/")


async def _default_project(api: Api, user_id: str) -> str | None:
    try:
        return (await api.get("identity", f"/users/{user_id}"))["user"].get("default_project_id")
    except ApiError:
        return None


async def _revoke(api: Api, token: str) -> None:
    with contextlib.suppress(ApiError):  # already expired or revoked
        await api.call("DELETE", "identity", "/auth/tokens", headers={"X-Subject-Token": token})


async def _scope(request: web.Request, sess: Session, token: str, project_id: str) -> None:
    """A project-scoped token from ``token``: the session takes its roles and catalog."""
    keystone = Api(request.app[HTTP], token, {"identity": request.app[IDENTITY_URL]})
    _, headers, body = await keystone.call("POST", "identity", "/auth/tokens", body={"auth": {
        "identity": {"methods": ["token"], "token": {"id": token}}, "scope": {"project": {"id": project_id}}}})
    tok: dict[str, Any] = body["token"]
    sess.token = headers["X-Subject-Token"]
    sess.expires = datetime.fromisoformat(tok["expires_at"].replace("Z", "+00:00")).timestamp()
    sess.project_id, sess.project_name = tok["project"]["id"], tok["project"]["name"]
    sess.roles = sorted(r["name"] for r in tok.get("roles", []))
    sess.urls = endpoints(tok.get("catalog", []), request.app[REGION])
    sess.urls["identity"] = request.app[IDENTITY_URL]


async def switch(request: web.Request) -> web.StreamResponse:
    sess = request[SESSION]
    project_id = (await form(request)).get("project_id", "")
    if not any(p["id"] == project_id for p in sess.projects):
        raise ApiError(404, f"You have no role in project {project_id}.")
    old = sess.token
    new = request.app[STORE].renew(sess)
    for name in ("unscoped", "token", "expires", "user_id", "user_name", "domain_name", "projects"):
        setattr(new, name, getattr(sess, name))
    request[SESSION] = new
    await _scope(request, new, sess.unscoped, project_id)
    await _revoke(Api(request.app[HTTP], new.token, new.urls), old)
    new.flash("success", f"Switched to project {new.project_name}.")
    raise redirect("/project/")


async def logout(request: web.Request) -> web.StreamResponse:
    sess = request[SESSION]
    # Each token revokes itself: once the first is gone it could not authorize revoking the other.
    for token in (sess.token, sess.unscoped):
        await _revoke(Api(request.app[HTTP], token, sess.urls), token)
    request.app[STORE].drop(sess)
    fresh = request.app[STORE].new()
    request[SESSION] = fresh
    fresh.flash("success", "You have been logged out.")
    raise redirect("/auth/login/")


async def home(request: web.Request) -> web.StreamResponse:
    raise redirect("/project/")


PAGES = [
    Page("GET", "/", home),
    Page("GET", "/auth/login/", login_form, public=True),
    Page("POST", "/auth/login/", login, public=True),
    Page("POST", "/auth/switch/", switch),
    Page("POST", "/auth/logout/", logout),
]
