"""The dashboard over plain HTTP against the live cloud (api tier): login and its cookie, the headers, every
panel for a member and an admin, the admin gate, CSRF, escaping, errors as the APIs gave them, the project
switcher and logout revoking the token."""

from __future__ import annotations

import html
import re
import uuid

import pytest
import requests

from tests.dashboard.conftest import csrf_of, http_login, password
from tests.livecloud import LiveCloud
from tinystack.dashboard.session import COOKIE
from tinystack.dashboard.web import STORE

pytestmark = pytest.mark.api

PROJECT_PAGES = ["/project/", "/project/instances/", "/project/instances/launch/", "/project/images/",
                 "/project/key_pairs/", "/project/volumes/", "/project/snapshots/", "/project/network_topology/",
                 "/project/networks/", "/project/routers/", "/project/security_groups/", "/project/floating_ips/",
                 "/project/api_access/", "/project/server_groups/", "/project/containers/", "/project/backups/",
                 "/identity/application_credentials/"]
ADMIN_PAGES = ["/admin/hypervisors/", "/admin/instances/", "/admin/flavors/", "/admin/images/", "/admin/networks/",
               "/admin/info/", "/identity/users/", "/identity/roles/", "/admin/aggregates/", "/admin/defaults/",
               "/admin/", "/admin/volumes/", "/admin/routers/", "/admin/floating_ips/", "/identity/domains/",
               "/identity/groups/"]


def test_login_sets_a_session_cookie_and_the_headers(live: LiveCloud) -> None:
    base = live.url("dashboard")
    s = requests.Session()
    first = s.get(f"{base}/auth/login/", timeout=30)
    assert first.headers["X-Frame-Options"] == "DENY"
    assert first.headers["X-Content-Type-Options"] == "nosniff"
    assert first.headers["Referrer-Policy"] == "same-origin"
    assert "frame-ancestors 'none'" in first.headers["Content-Security-Policy"]
    user, pw = password(live, "demo")
    r = s.post(f"{base}/auth/login/", data={"csrf_token": csrf_of(first.text), "domain": "Default", "username": user,
                                             "password": pw}, allow_redirects=False, timeout=30)
    assert r.status_code == 303 and r.headers["Location"] == "/project/"
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    # A new id at login: the anonymous session's id (the login form's) is not the logged-in one.
    assert s.cookies[COOKIE] != first.cookies.get(COOKIE)


def test_a_wrong_password_is_refused(live: LiveCloud) -> None:
    base = live.url("dashboard")
    s = requests.Session()
    token = csrf_of(s.get(f"{base}/auth/login/", timeout=30).text)
    r = s.post(f"{base}/auth/login/", data={"csrf_token": token, "domain": "Default", "username": "demo",
                                             "password": "wrong"}, timeout=30)
    assert r.status_code == 401 and "Invalid credentials." in r.text
    assert s.get(f"{base}/project/", allow_redirects=False, timeout=30).status_code == 303


def test_pages_without_a_login_send_to_the_login_page(live: LiveCloud) -> None:
    r = requests.get(live.url("dashboard") + "/project/instances/", allow_redirects=False, timeout=30)
    assert r.status_code == 303 and r.headers["Location"] == "/auth/login/?next=/project/instances/"


def test_every_project_panel_renders_for_a_member(live: LiveCloud) -> None:
    s = http_login(live, "demo")
    for path in PROJECT_PAGES:
        r = s.get(live.url("dashboard") + path, timeout=30)
        assert r.status_code == 200, (path, r.text[-500:])
        assert "alert-error" not in r.text, (path, r.text[-800:])
        assert 'id="nav-admin"' not in r.text


def test_admin_urls_are_403_for_a_member_and_open_to_an_admin(live: LiveCloud) -> None:
    member, admin = http_login(live, "demo"), http_login(live, "admin")
    for path in ADMIN_PAGES:
        assert member.get(live.url("dashboard") + path, timeout=30).status_code == 403, path
        r = admin.get(live.url("dashboard") + path, timeout=30)
        assert r.status_code == 200 and "alert-error" not in r.text, (path, r.text[-800:])
    r = member.post(live.url("dashboard") + "/admin/flavors/create/",
                    data={"csrf_token": csrf_of(member.get(live.url("dashboard") + "/project/", timeout=30).text),
                          "name": "member-flavor", "vcpus": "1", "ram": "64", "disk": "1"}, timeout=30)
    assert r.status_code == 403
    assert live.conn("admin").compute.find_flavor("member-flavor") is None


def test_a_member_sees_only_their_projects_under_identity(live: LiveCloud) -> None:
    base = live.url("dashboard")
    member, admin = http_login(live, "demo"), http_login(live, "admin")
    mine = member.get(f"{base}/identity/projects/", timeout=30)
    assert mine.status_code == 200 and ">demo</td>" in mine.text and ">admin</td>" not in mine.text
    assert 'id="create-project"' not in mine.text and 'href="/identity/users/"' not in mine.text
    r = member.post(f"{base}/identity/projects/create/", data={"csrf_token": csrf_of(mine.text), "name": "nope"},
                    timeout=30)
    assert r.status_code == 403 and live.conn("admin").identity.find_project("nope") is None
    every = admin.get(f"{base}/identity/projects/", timeout=30).text
    assert ">admin</td>" in every and ">demo</td>" in every and 'id="create-project"' in every


def test_forms_need_the_session_csrf_token(live: LiveCloud) -> None:
    s = http_login(live, "demo")
    base = live.url("dashboard")
    name = f"csrf-{uuid.uuid4().hex[:6]}"
    for data in ({"name": name}, {"name": name, "csrf_token": "forged"}):
        r = s.post(f"{base}/project/networks/create/", data=data, timeout=30)
        assert r.status_code == 403 and "CSRF" in r.text
    other = http_login(live, "admin")
    r = s.post(f"{base}/project/networks/create/", timeout=30,
               data={"name": name, "csrf_token": csrf_of(other.get(f"{base}/project/", timeout=30).text)})
    assert r.status_code == 403, "another session's token was accepted"
    assert live.conn("demo").network.find_network(name) is None
    r = s.post(f"{base}/project/networks/create/", data={"name": name, "with_subnet": "off",
                                                          "csrf_token": csrf_of(s.get(f"{base}/project/", timeout=30).text)},
               timeout=30)
    assert r.status_code == 200 and live.conn("demo").network.find_network(name) is not None


def test_user_chosen_names_are_escaped(live: LiveCloud) -> None:
    demo = live.conn("demo")
    hostile = "<script>alert('x')</script>"
    net = demo.network.create_network(name=hostile)
    demo.network.create_subnet(network_id=net.id, name=hostile, cidr="10.77.0.0/24", ip_version=4)
    flavor = next(f for f in demo.compute.flavors() if f.name == "m1.nano")
    server = demo.compute.create_server(name=hostile, flavor_id=flavor.id, networks=[{"uuid": net.id}],
                                        image_id=_image(live))
    try:
        s = http_login(live, "demo")
        for path in ("/project/networks/", "/project/instances/", f"/project/instances/{server.id}/",
                     "/project/network_topology/"):
            text = s.get(live.url("dashboard") + path, timeout=30).text
            assert hostile not in text, path
            assert "&lt;script&gt;alert(" in text, path
    finally:
        demo.compute.delete_server(server)
        demo.compute.wait_for_delete(server, wait=60)
        demo.network.delete_network(net)


def _image(live: LiveCloud) -> str:
    admin = live.conn("admin")
    found = admin.image.find_image("dashboard-test-img")
    if found is not None:
        return str(found.id)
    image = admin.image.create_image(name="dashboard-test-img", data=b"\0" * 4096, disk_format="raw",
                                     container_format="bare", visibility="public")
    return str(image.id)


def test_api_errors_are_shown_as_the_api_gave_them(live: LiveCloud) -> None:
    s = http_login(live, "demo")
    base = live.url("dashboard")
    token = csrf_of(s.get(f"{base}/project/networks/", timeout=30).text)
    name = f"bad-cidr-{uuid.uuid4().hex[:6]}"
    data = {"csrf_token": token, "name": name, "subnet_name": "s", "cidr": "10.0.0.0/33"}
    r = s.post(f"{base}/project/networks/create/", data=data, headers={"Referer": f"{base}/project/networks/"},
               timeout=30)
    assert r.status_code == 200 and r.url == f"{base}/project/networks/"
    assert "alert-error" in r.text and "10.0.0.0/33" in r.text
    assert live.conn("demo").network.find_network(name) is None, "a half-made network was left behind"
    missing = s.get(f"{base}/project/instances/{uuid.uuid4()}/", timeout=30)
    assert missing.status_code == 404 and "could not be found" in missing.text.lower()


def test_console_tab_frames_the_console_of_a_running_server_and_shows_the_error_of_a_stopped_one(
        live: LiveCloud) -> None:
    demo = live.conn("demo")
    flavor = next(f for f in demo.compute.flavors() if f.name == "m1.nano")
    server = demo.compute.create_server(name="console-tab", flavor_id=flavor.id, image_id=_image(live),
                                        networks="auto")
    try:
        demo.compute.wait_for_server(server, wait=60)
        s = http_login(live, "demo")
        tab = f"{live.url('dashboard')}/project/instances/{server.id}/?tab=console"
        text = s.get(tab, timeout=30).text
        assert 'id="console-error"' not in text
        found = re.search(r'<iframe class="console" id="console-frame" src="([^"]+)"', text)
        assert found, "no console iframe for an ACTIVE server"
        url = html.unescape(found.group(1))
        assert url.startswith(f"{live.url('console')}/vnc_lite.html?path=%3Ftoken%3D")
        # The console page lets the dashboard (another port, so another origin) frame it, and no other site.
        page = requests.get(url, timeout=30)
        assert page.status_code == 200 and "X-Frame-Options" not in page.headers
        ancestors = page.headers["Content-Security-Policy"]
        assert ancestors == f"frame-ancestors 'self' {live.url('dashboard')}"
        demo.compute.stop_server(server)
        demo.compute.wait_for_server(server, status="SHUTOFF", wait=60)
        text = s.get(tab, timeout=30).text
        assert 'id="console-frame"' not in text
        found = re.search(r'id="console-error">([^<]*)<', text)
        assert found and found.group(1) == f"Instance {server.id} is not ready."
    finally:
        demo.compute.delete_server(server)


def test_downloads_hold_no_password(live: LiveCloud) -> None:
    s = http_login(live, "demo")
    _, pw = password(live, "demo")
    base = live.url("dashboard")
    rc = s.get(f"{base}/project/api_access/openrc/", timeout=30)
    assert "attachment" in rc.headers["Content-Disposition"] and "OS_AUTH_URL=" in rc.text and pw not in rc.text
    cy = s.get(f"{base}/project/api_access/clouds.yaml", timeout=30)
    assert "auth_url:" in cy.text and "project_name: demo" in cy.text and pw not in cy.text


def test_project_switcher_rescopes(live: LiveCloud) -> None:
    admin = live.conn("admin")
    tag = uuid.uuid4().hex[:6]
    member = admin.identity.find_role("member")
    projects = [admin.identity.create_project(name=f"sw-{tag}-{i}", domain_id="default") for i in (1, 2)]
    user = admin.identity.create_user(name=f"sw-{tag}", password="pw", domain_id="default",
                                      default_project_id=projects[0].id)
    for p in projects:
        admin.identity.assign_project_role_to_user(p, user, member)
    base = live.url("dashboard")
    s = requests.Session()
    token = csrf_of(s.get(f"{base}/auth/login/", timeout=30).text)
    s.post(f"{base}/auth/login/", data={"csrf_token": token, "domain": "Default", "username": f"sw-{tag}",
                                        "password": "pw"}, timeout=30)
    page = s.get(f"{base}/project/", timeout=30).text
    assert f"in sw-{tag}-1" in page
    r = s.post(f"{base}/auth/switch/", data={"csrf_token": csrf_of(page), "project_id": projects[1].id}, timeout=30)
    assert f"in sw-{tag}-2" in r.text and "Switched to project" in r.text
    r = s.post(f"{base}/auth/switch/", data={"csrf_token": csrf_of(r.text), "project_id": str(uuid.uuid4())}, timeout=30)
    assert "You have no role in project" in r.text


def test_logout_revokes_the_token(live: LiveCloud) -> None:
    s = http_login(live, "demo")
    base = live.url("dashboard")
    store = live.cloud._frontends[0].app[STORE]
    session = store.get(s.cookies[COOKIE])
    assert session is not None and session.logged_in
    tokens = [session.token, session.unscoped]
    page = s.get(f"{base}/project/", timeout=30).text
    r = s.post(f"{base}/auth/logout/", data={"csrf_token": csrf_of(page)}, timeout=30)
    assert r.url == f"{base}/auth/login/" and "logged out" in r.text
    admin = live.conn("admin")
    for token in tokens:
        check = requests.get(f"{live.url('identity')}/auth/tokens", timeout=30,
                             headers={"X-Auth-Token": admin.auth_token, "X-Subject-Token": token})
        assert check.status_code == 404
    assert s.get(f"{base}/project/", allow_redirects=False, timeout=30).status_code == 303
