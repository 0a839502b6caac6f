"""The Admin, Identity and router panels added with the object store (api tier, over plain HTTP): routers' static
routes; Admin > Overview, Volumes, Routers and Floating IPs of every project and the instance actions migrate,
live migrate and reset state; Identity > Domains, Groups (members) and Application Credentials (the secret shown
once). Each with bad input that changes nothing, another project's resource, and a member where the rule is
admin-only."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from tests.dashboard.conftest import csrf_of, http_login
from tests.livecloud import LiveCloud

pytestmark = pytest.mark.api

HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def proj(live: LiveCloud) -> Any:
    return live.conn(live.project_conn("adm").config.name)


def _post(s: requests.Session, url: str, page: str, data: dict[str, str]) -> requests.Response:
    token = csrf_of(s.get(page, timeout=30).text)
    return s.post(url, data={"csrf_token": token, **data}, timeout=30)


def test_router_static_routes(live: LiveCloud, proj: Any) -> None:
    conn = proj
    net = conn.network.create_network(name="routes-net")
    subnet = conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.77.0.0/24", name="routes-sub")
    router = conn.network.create_router(name="routes-router")
    conn.network.add_interface_to_router(router, subnet_id=subnet.id)
    s, base = http_login(live, conn.config.name), live.url("dashboard")
    page = f"{base}/project/routers/{router.id}/"
    assert 'id="add-route"' in s.get(page, timeout=30).text
    add = f"{page}routes/"
    for bad, message in (({"destination": "not-a-cidr", "nexthop": "10.77.0.5"}, "is not a valid network"),
                         ({"destination": "192.168.5.0/24", "nexthop": "10.77.0"}, "is not a valid IP address"),
                         ({"destination": "2001:db8::/64", "nexthop": "10.77.0.5"}, "same IP version"),
                         ({"destination": "", "nexthop": "10.77.0.5"}, "Destination is required")):
        assert message in _post(s, add, page, bad).text, bad
    # A next hop on no attached subnet: the API's refusal, as it worded it.
    r = _post(s, add, page, {"destination": "192.168.5.0/24", "nexthop": "172.31.9.9"})
    assert "Error:" in r.text and "nexthop is not connected with router" in r.text
    assert not conn.network.get_router(router.id).routes
    r = _post(s, add, page, {"destination": "192.168.5.0/24", "nexthop": "10.77.0.5"})
    assert "Added static route to 192.168.5.0/24 via 10.77.0.5" in r.text
    assert conn.network.get_router(router.id).routes == [{"destination": "192.168.5.0/24", "nexthop": "10.77.0.5"}]
    assert "already there" in _post(s, add, page, {"destination": "192.168.5.0/24", "nexthop": "10.77.0.5"}).text
    # Another project: its router is not found; the route stays.
    other = http_login(live, "demo")
    r = _post(other, add, f"{base}/project/", {"destination": "192.168.6.0/24", "nexthop": "10.77.0.6"})
    assert "Error:" in r.text
    r = _post(other, f"{page}routes/remove/", f"{base}/project/", {"destination": "192.168.5.0/24",
                                                                    "nexthop": "10.77.0.5"})
    assert "Error:" in r.text and len(conn.network.get_router(router.id).routes) == 1
    r = _post(s, f"{page}routes/remove/", page, {"destination": "192.168.9.0/24", "nexthop": "10.77.0.5"})
    assert "has no route to" in r.text
    r = _post(s, f"{page}routes/remove/", page, {"destination": "192.168.5.0/24", "nexthop": "10.77.0.5"})
    assert "Removed static route" in r.text and not conn.network.get_router(router.id).routes
    conn.network.remove_interface_from_router(router, subnet_id=subnet.id)
    conn.network.delete_router(router)
    conn.network.delete_network(net)


def test_admin_lists_of_every_project(live: LiveCloud, proj: Any) -> None:
    conn = proj
    vol = conn.block_storage.create_volume(size=1, name=HOSTILE)
    router = conn.network.create_router(name="adm-router")
    public = conn.network.find_network("public")
    fip = conn.network.create_ip(floating_network_id=public.id) if public is not None else None
    admin, member = http_login(live, "admin"), http_login(live, conn.config.name)
    base = live.url("dashboard")
    project = conn.current_project_id
    name = live.conn("admin").identity.get_project(project).name
    text = admin.get(f"{base}/admin/volumes/", timeout=30).text
    assert f'data-id="{vol.id}"' in text and "&lt;img src=x" in text and HOSTILE not in text and name in text
    text = admin.get(f"{base}/admin/routers/", timeout=30).text
    assert f'data-id="{router.id}"' in text and name in text
    if fip is not None:
        text = admin.get(f"{base}/admin/floating_ips/", timeout=30).text
        assert f'data-id="{fip.id}"' in text and fip.floating_ip_address in text
    text = admin.get(f"{base}/admin/?start=2020-01-01&end=2099-12-31", timeout=30).text
    assert 'id="admin-usage"' in text
    assert admin.get(f"{base}/admin/?start=soon", timeout=30).status_code == 400
    # A member: 403 from every one of them, checked by the dashboard.
    for path in ("/admin/", "/admin/volumes/", "/admin/routers/", "/admin/floating_ips/"):
        r = member.get(f"{base}{path}", timeout=30)
        assert r.status_code == 403 and vol.id not in r.text, path
    # The Volumes page is paged like the project's.
    assert 'id="admin-volumes"' in admin.get(f"{base}/admin/volumes/?marker={vol.id}", timeout=30).text
    conn.network.delete_router(router)
    if fip is not None:
        conn.network.delete_ip(fip)
    conn.block_storage.wait_for_status(vol, "available", wait=60)
    conn.block_storage.delete_volume(vol)


def test_admin_instance_actions(live: LiveCloud, proj: Any) -> None:
    conn = proj
    admin_sdk = live.conn("admin")
    image = admin_sdk.image.create_image(name=f"adm-img-{uuid.uuid4().hex[:6]}", data=b"\0" * 4096, disk_format="raw",
                                         container_format="bare", visibility="public")
    flavor = min(conn.compute.flavors(), key=lambda f: f.ram)
    server = conn.compute.create_server(name="adm-vm", image_id=image.id, flavor_id=flavor.id, networks="none")
    server = conn.compute.wait_for_server(server, status="ACTIVE", wait=60)
    admin, base = http_login(live, "admin"), live.url("dashboard")
    panel = f"{base}/admin/instances/"
    act = f"{panel}{server.id}/action"
    assert f'action="/admin/instances/{server.id}/action"' in admin.get(panel, timeout=30).text
    for bad, message in (({"action": "reset_state", "state": "building"}, "takes the state active or error"),
                         ({"action": "evacuate"}, "Unknown action"),
                         ({"action": "live_migrate", "block_migration": "maybe"}, "auto, true or false")):
        assert message in _post(admin, act, panel, bad).text, bad
    assert conn.compute.get_server(server.id).status == "ACTIVE"
    r = _post(admin, act, panel, {"action": "reset_state", "state": "error", "next": "/admin/instances/"})
    assert "Reset state: request sent" in r.text and conn.compute.get_server(server.id).status == "ERROR"
    _post(admin, act, panel, {"action": "reset_state", "state": "active"})
    assert conn.compute.get_server(server.id).status == "ACTIVE"
    # One host only: the scheduler finds no other, and the page says what the API said.
    if len(live.hosts) == 1:
        for action in ("migrate", "live_migrate"):
            r = _post(admin, act, panel, {"action": action})
            assert "Error:" in r.text, action
        assert conn.compute.get_server(server.id).status == "ACTIVE"
    # Admin > Overview: the project's usage over the period, by its name.
    usage = admin.get(f"{base}/admin/?start=2020-01-01&end=2099-12-31", timeout=30).text
    row = usage.split(f'data-id="{conn.current_project_id}"')[1].split("</tr>")[0]
    assert live.conn("admin").identity.get_project(conn.current_project_id).name in row
    csv_text = admin.get(f"{base}/admin/?start=2020-01-01&end=2099-12-31&format=csv", timeout=30).text
    assert csv_text.startswith("Usage Report For Period:,2020-01-01,2099-12-31")
    assert any(line.startswith(live.conn("admin").identity.get_project(conn.current_project_id).name + ",")
               for line in csv_text.splitlines())
    assert member_csv_refused(live, base)
    # A member: refused by the dashboard, the instance untouched.
    member = http_login(live, conn.config.name)
    r = _post(member, act, f"{base}/project/", {"action": "reset_state", "state": "error"})
    assert r.status_code == 403 and conn.compute.get_server(server.id).status == "ACTIVE"
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=60)
    admin_sdk.image.delete_image(image.id)


def member_csv_refused(live: LiveCloud, base: str) -> bool:
    r = http_login(live, "demo").get(f"{base}/admin/?format=csv", timeout=30)
    return r.status_code == 403 and "Usage Report" not in r.text


def test_identity_domains_and_groups(live: LiveCloud, proj: Any) -> None:
    admin, base = http_login(live, "admin"), live.url("dashboard")
    sdk = live.conn("admin")
    member = http_login(live, proj.config.name)
    panel = f"{base}/identity/domains/"
    name = f"dom-{uuid.uuid4().hex[:6]}"
    assert "Name is required" in _post(admin, f"{panel}create/", panel, {"name": ""}).text
    r = _post(admin, f"{panel}create/", panel, {"name": name, "description": HOSTILE})
    assert f"Created domain {name}" in r.text and "&lt;img src=x" in r.text and HOSTILE not in r.text
    domain = sdk.identity.find_domain(name)
    act = f"{panel}{domain.id}/action"
    assert "Error:" in _post(admin, f"{panel}create/", panel, {"name": name}).text  # the API's conflict
    assert "Unknown action" in _post(admin, act, panel, {"action": "purge"}).text
    assert member.get(panel, timeout=30).status_code == 403
    assert _post(member, act, f"{base}/project/", {"action": "delete"}).status_code == 403
    assert sdk.identity.find_domain(name) is not None
    _post(admin, act, panel, {"action": "disable"})
    assert sdk.identity.get_domain(domain.id).is_enabled is False
    _post(admin, act, panel, {"action": "enable"})
    assert sdk.identity.get_domain(domain.id).is_enabled is True
    assert "Delete: done" in _post(admin, act, panel, {"action": "delete"}).text
    assert sdk.identity.find_domain(name) is None
    # Groups and their members.
    groups = f"{base}/identity/groups/"
    gname = f"grp-{uuid.uuid4().hex[:6]}"
    assert "Name is required" in _post(admin, f"{groups}create/", groups, {"name": " "}).text
    r = _post(admin, f"{groups}create/", groups, {"name": gname})
    assert f"Created group {gname}" in r.text
    group = sdk.identity.find_group(gname)
    page = f"{groups}{group.id}/"
    user = sdk.identity.find_user(proj.config.auth["username"])
    gact = f"{page}action"
    r = _post(admin, gact, page, {"action": "add_member", "user": user.id})
    assert "Add member: done" in r.text and f'data-id="{user.id}"' in r.text.split('id="group-members"')[1]
    assert [u.id for u in sdk.identity.group_users(group)] == [user.id]
    assert "Error:" in _post(admin, gact, page, {"action": "add_member", "user": uuid.uuid4().hex}).text
    assert "User is required" in _post(admin, gact, page, {"action": "add_member", "user": ""}).text
    assert member.get(page, timeout=30).status_code == 403
    assert _post(member, gact, f"{base}/project/", {"action": "remove_member", "user": user.id}).status_code == 403
    assert [u.id for u in sdk.identity.group_users(group)] == [user.id]
    _post(admin, gact, page, {"action": "remove_member", "user": user.id})
    assert list(sdk.identity.group_users(group)) == []
    assert "Deleted group" in _post(admin, gact, page, {"action": "delete"}).text
    assert sdk.identity.find_group(gname) is None


def test_application_credentials_secret_shown_once(live: LiveCloud, proj: Any) -> None:
    s, base = http_login(live, proj.config.name), live.url("dashboard")
    panel = f"{base}/identity/application_credentials/"
    assert 'id="create-app-cred"' in s.get(panel, timeout=30).text
    for bad, message in (({"name": ""}, "Name is required"),
                         ({"name": "x", "expires_at": "tomorrow"}, "Expiration must be a date"),
                         ({"name": "x", "expires_at": "2001-01-01"}, "must be in the future"),
                         ({"name": "x", "roles": "admin"}, "You do not have the role")):
        assert message in _post(s, f"{panel}create/", panel, bad).text, bad
    user_id = live.conn("admin").identity.find_user(proj.config.auth["username"]).id
    assert list(live.conn("admin").identity.application_credentials(user_id)) == []
    r = _post(s, f"{panel}create/", panel, {"name": "ci", "description": HOSTILE, "expires_at": "2099-01-01",
                                            "roles": "member"})
    assert r.status_code == 200 and 'id="app-cred-secret-value"' in r.text
    cred_id = r.text.split('id="app-cred-id">')[1].split("<")[0]
    secret = r.text.split('id="app-cred-secret-value">')[1].split("<")[0]
    listing = s.get(panel, timeout=30).text
    assert cred_id in listing and secret not in listing and "&lt;img src=x" in listing and HOSTILE not in listing
    # The secret works: Keystone issues a token for it.
    auth = {"auth": {"identity": {"methods": ["application_credential"],
                                  "application_credential": {"id": cred_id, "secret": secret}}}}
    got = requests.post(f"{live.url('identity')}/auth/tokens", json=auth, timeout=30)
    assert got.status_code == 201 and got.json()["token"]["project"]["id"] == proj.current_project_id
    # Another user: not in their list, and their delete of it is the API's error.
    other = http_login(live, "demo")
    assert cred_id not in other.get(panel, timeout=30).text
    assert "Error:" in _post(other, f"{panel}{cred_id}/delete/", panel, {}).text
    assert "Deleted application credential" in _post(s, f"{panel}{cred_id}/delete/", panel, {}).text
    assert requests.post(f"{live.url('identity')}/auth/tokens", json=auth, timeout=30).status_code == 401
