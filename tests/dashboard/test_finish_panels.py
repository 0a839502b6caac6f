"""The dashboard's last pieces over plain HTTP (api tier): the launch wizard's Network Ports and Metadata steps,
Attach / Detach Interface and Rescue / Unrescue on an instance's page, and Admin > Flavors' Flavor Access. Each
with bad input that changes nothing, another project's resource, and a member where the rule is admin-only."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from tests.dashboard.conftest import csrf_of, http_login
from tests.livecloud import LiveCloud
from tests.waiting import wait_for

pytestmark = pytest.mark.api


@pytest.fixture(scope="module")
def proj(live: LiveCloud) -> Any:
    """A project of its own with a network and subnet, a public image and the smallest flavor."""
    conn = live.conn(live.project_conn("finish").config.name)
    admin = live.conn("admin")
    image = admin.image.create_image(name=f"finish-img-{uuid.uuid4().hex[:6]}", data=b"\0" * 4096, disk_format="raw",
                                     container_format="bare", visibility="public")
    net = conn.network.create_network(name="finish-net")
    conn.network.create_subnet(network_id=net.id, ip_version=4, cidr="10.78.0.0/24", name="finish-sub")
    flavor = min(conn.compute.flavors(), key=lambda f: f.ram)
    yield conn, image.id, flavor.id, net.id
    for server in conn.compute.servers():
        conn.compute.delete_server(server)
    for server in conn.compute.servers():
        conn.compute.wait_for_delete(server, wait=60)
    for port in conn.network.ports(project_id=conn.current_project_id):
        if not port.device_owner:
            conn.network.delete_port(port)
    conn.network.delete_network(net)
    admin.image.delete_image(image.id)


def _post(s: requests.Session, url: str, page: str, data: dict[str, Any]) -> requests.Response:
    """A form sent as the browser sends it: with the CSRF token of the page it is on."""
    token = csrf_of(s.get(page, timeout=30).text)
    return s.post(url, data={"csrf_token": token, **data}, timeout=30)


def _active(conn: Any, server_id: str) -> Any:
    return conn.compute.wait_for_server(conn.compute.get_server(server_id), status="ACTIVE", wait=60)


def test_launch_with_an_existing_port_and_metadata(live: LiveCloud, proj: Any) -> None:
    conn, image, flavor, net = proj
    port = conn.network.create_port(network_id=net, name="finish-free-port")
    demo = live.conn("demo")
    demo_net = demo.network.create_network(name=f"finish-demo-{uuid.uuid4().hex[:6]}")
    demo.network.create_subnet(network_id=demo_net.id, ip_version=4, cidr="10.79.0.0/24")
    foreign = demo.network.create_port(network_id=demo_net.id, name="finish-foreign-port")
    try:
        s, base = http_login(live, conn.config.name), live.url("dashboard")
        wizard = f"{base}/project/instances/launch/"
        page = s.get(wizard, timeout=30).text
        assert "Network Ports" in page and "Metadata" in page and port.id in page and foreign.id not in page
        launch: dict[str, Any] = {"name": "with-port", "flavor": flavor, "source_type": "image", "source_id": image,
                                  "ports": port.id, "security_groups": "default"}
        # A value without a key, a key twice: refused before any call, nothing launched.
        for meta, message in (((["", "a"], ["x", "y"]), "has no key"), ((["a", "a"], ["x", "y"]), "given twice"),
                              ((["k" * 256], ["v"]), "at most 255")):
            r = _post(s, wizard, wizard, {**launch, "metadata_key": meta[0], "metadata_value": meta[1]})
            assert "Error:" in r.text and message in r.text, r.text[-2000:]
        assert not list(conn.compute.servers())
        # Another project's port: the API's refusal, as it worded it.
        r = _post(s, wizard, wizard, {**launch, "ports": foreign.id})
        assert "Error:" in r.text and not list(conn.compute.servers())
        assert not demo.network.get_port(foreign.id).device_id
        r = _post(s, wizard, wizard, {**launch, "metadata_key": ["role", "", "tier"],
                                      "metadata_value": ["<web>", "", "front"]})
        assert "Launched instance with-port" in r.text
        server = _active(conn, next(iter(conn.compute.servers())).id)
        assert server.metadata == {"role": "<web>", "tier": "front"}
        assert conn.network.get_port(port.id).device_id == server.id
        # Bound now: the wizard no longer offers it; the metadata shows as text on the instance's page.
        assert port.id not in s.get(wizard, timeout=30).text
        detail = s.get(f"{base}/project/instances/{server.id}/", timeout=30).text
        assert "&lt;web&gt;" in detail and "<web>" not in detail
        conn.compute.delete_server(server)
        conn.compute.wait_for_delete(server, wait=60)
    finally:
        demo.network.delete_port(foreign)
        demo.network.delete_network(demo_net)


def test_attach_and_detach_interface(live: LiveCloud, proj: Any) -> None:
    conn, image, flavor, net = proj
    server = conn.compute.wait_for_server(conn.compute.create_server(
        name="ifaces", image_id=image, flavor_id=flavor, networks="none"), status="ACTIVE", wait=60)
    spare = conn.network.create_port(network_id=net, name="finish-spare")
    s, base = http_login(live, conn.config.name), live.url("dashboard")
    page = f"{base}/project/instances/{server.id}/"
    act = f"{page}action"
    html = s.get(page, timeout=30).text
    assert 'id="form-attach-interface"' in html and spare.id in html and 'id="form-detach-interface"' in html

    def ports() -> set[str]:
        return {i.port_id for i in conn.compute.server_interfaces(server.id)}

    for bad, message in (({"specification": "network", "network": ""}, "Choose a network"),
                         ({"specification": "port", "port": ""}, "Choose a port"),
                         ({"specification": "floppy"}, "Unknown interface specification")):
        r = _post(s, act, page, {"action": "attach_interface", **bad})
        assert "Error:" in r.text and message in r.text
    assert not ports()
    r = _post(s, act, page, {"action": "attach_interface", "specification": "network", "network": net,
                             "fixed_ip": "10.78.0.50", "next": page.replace(base, "")})
    assert "Attach interface: request sent" in r.text, r.text[-2000:]
    made = wait_for(ports, 30, "the new interface")
    assert any(ip["ip_address"] == "10.78.0.50" for ip in conn.network.get_port(next(iter(made))).fixed_ips)
    r = _post(s, act, page, {"action": "attach_interface", "specification": "port", "port": spare.id})
    assert "request sent" in r.text
    wait_for(lambda: spare.id in ports(), 30, "the spare port attached")
    assert conn.network.get_port(spare.id).device_id == server.id
    # Another project may neither attach to nor detach from this instance.
    other = http_login(live, "demo")
    r = _post(other, act, f"{base}/project/", {"action": "detach_interface", "port": spare.id})
    assert "Error:" in r.text and spare.id in ports()
    r = _post(other, act, f"{base}/project/", {"action": "attach_interface", "specification": "network",
                                               "network": net})
    assert "Error:" in r.text and len(ports()) == 2
    # A port this instance does not have: the API's words.
    r = _post(s, act, page, {"action": "detach_interface", "port": str(uuid.uuid4())})
    assert "Error:" in r.text and "is not attached" in r.text and len(ports()) == 2
    tab = s.get(f"{page}?tab=interfaces", timeout=30).text
    assert f'data-id="{spare.id}"' in tab and "Detach Interface" in tab
    r = _post(s, act, page, {"action": "detach_interface", "port": spare.id,
                             "next": page.replace(base, "") + "?tab=interfaces"})
    assert "Detach interface: request sent" in r.text and 'id="interfaces"' in r.text
    wait_for(lambda: spare.id not in ports(), 30, "the spare port detached")
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, wait=60)


def test_rescue_and_unrescue(live: LiveCloud, proj: Any) -> None:
    conn, image, flavor, _ = proj
    server = conn.compute.wait_for_server(conn.compute.create_server(
        name="rescue-me", image_id=image, flavor_id=flavor, networks="none"), status="ACTIVE", wait=60)
    demo = live.conn("demo")
    private = demo.image.create_image(name="finish-private", data=b"\0" * 1024, disk_format="raw",
                                      container_format="bare")
    try:
        s, base = http_login(live, conn.config.name), live.url("dashboard")
        page = f"{base}/project/instances/{server.id}/"
        act = f"{page}action"
        assert 'id="form-rescue"' in s.get(page, timeout=30).text
        # Another project's private image: Glance does not find it for this project; nothing rescued.
        r = _post(s, act, page, {"action": "rescue", "image": private.id})
        assert "Error:" in r.text and conn.compute.get_server(server.id).status == "ACTIVE"
        # Another project's session may not rescue this instance.
        other = http_login(live, "demo")
        r = _post(other, act, f"{base}/project/", {"action": "rescue", "image": image})
        assert "Error:" in r.text and conn.compute.get_server(server.id).status == "ACTIVE"
        # Unrescue of an instance that is not in rescue: compute's conflict, shown as worded.
        r = _post(s, act, page, {"action": "unrescue"})
        assert "Error:" in r.text and "unrescue" in r.text
        r = _post(s, act, page, {"action": "rescue", "image": image, "password": "s3cret-pass",
                                 "next": page.replace(base, "")})
        assert "Rescue: request sent" in r.text and "s3cret-pass" not in r.text
        conn.compute.wait_for_server(conn.compute.get_server(server.id), status="RESCUE", wait=60)
        r = _post(s, act, page, {"action": "rescue", "image": image})
        assert "Error:" in r.text and conn.compute.get_server(server.id).status == "RESCUE"
        r = _post(s, act, page, {"action": "unrescue"})
        assert "Unrescue: request sent" in r.text
        _active(conn, server.id)
    finally:
        demo.image.delete_image(private.id)
        conn.compute.delete_server(server)
        conn.compute.wait_for_delete(server, wait=60)


def test_flavor_access(live: LiveCloud, proj: Any) -> None:
    conn = proj[0]
    project = conn.current_project_id
    admin_sdk = live.conn("admin")
    demo_project = live.conn("demo").current_project_id
    admin, base = http_login(live, "admin"), live.url("dashboard")
    flavors = f"{base}/admin/flavors/"
    name = f"finish-private-{uuid.uuid4().hex[:6]}"
    form = {"name": name, "flavor_id": "auto", "vcpus": "1", "ram": "64", "disk": "1", "ephemeral": "0", "swap": "0",
            "rxtx_factor": "1", "public": "off"}
    # Projects for a public flavor, or one that does not exist: refused, no flavor made.
    r = _post(admin, f"{flavors}create/", flavors, {**form, "public": ["off", "on"], "projects": project})
    assert "Error:" in r.text and "for private flavors" in r.text
    r = _post(admin, f"{flavors}create/", flavors, {**form, "projects": "no-such-project"})
    assert "Error:" in r.text and "Unknown project" in r.text
    assert not [f for f in admin_sdk.compute.flavors(is_public=None) if f.name == name]
    r = _post(admin, f"{flavors}create/", flavors, {**form, "projects": project})
    assert "usable by 1 project(s)" in r.text
    flavor = next(f for f in admin_sdk.compute.flavors(is_public=None) if f.name == name)
    try:
        assert [a["tenant_id"] for a in admin_sdk.compute.get_flavor_access(flavor)] == [project]
        assert flavor.id in {f.id for f in conn.compute.flavors()}
        page = f"{flavors}{flavor.id}/access/"
        assert f'id="access-{flavor.id}"' in admin.get(flavors, timeout=30).text
        html = admin.get(page, timeout=30).text
        assert f'data-id="{project}"' in html and 'id="form-flavor-access"' in html
        r = _post(admin, page, page, {"op": "add", "project": demo_project})
        assert "Flavor access given to project" in r.text
        assert {a["tenant_id"] for a in admin_sdk.compute.get_flavor_access(flavor)} == {project, demo_project}
        # Twice: compute's conflict; an unknown project or operation: refused before the call.
        r = _post(admin, page, page, {"op": "add", "project": demo_project})
        assert "Error:" in r.text and "already exists" in r.text
        for bad, message in (({"op": "add", "project": "nope"}, "Unknown project"),
                             ({"op": "grant", "project": project}, "Unknown flavor access change"),
                             ({"op": "add", "project": ""}, "Choose a project")):
            assert message in _post(admin, page, page, bad).text
        # A member: 403 from the page and the form, and the list unchanged.
        member = http_login(live, conn.config.name)
        assert member.get(page, timeout=30, allow_redirects=False).status_code == 403
        r = _post(member, page, f"{base}/project/", {"op": "remove", "project": project})
        assert r.status_code == 403
        assert len(admin_sdk.compute.get_flavor_access(flavor)) == 2
        r = _post(admin, page, page, {"op": "remove", "project": project})
        assert "Flavor access taken from project" in r.text
        assert [a["tenant_id"] for a in admin_sdk.compute.get_flavor_access(flavor)] == [demo_project]
        assert flavor.id not in {f.id for f in conn.compute.flavors()}
        # A public flavor has no access list: compute's refusal.
        public = next(f for f in admin_sdk.compute.flavors() if f.is_public)
        public_page = f"{flavors}{public.id}/access/"
        assert 'id="flavor-public"' in admin.get(public_page, timeout=30).text
        r = _post(admin, public_page, public_page, {"op": "add", "project": project})
        assert "Error:" in r.text and "public flavor" in r.text
    finally:
        admin_sdk.compute.delete_flavor(flavor)


def test_create_image_without_javascript(live: LiveCloud, proj: Any) -> None:
    """The Create Image form the progress bar's script sends, posted as a browser without JavaScript posts it."""
    conn = proj[0]
    s, base = http_login(live, conn.config.name), live.url("dashboard")
    page = f"{base}/project/images/"
    html = s.get(page, timeout=30).text
    assert 'data-upload-progress="upload-progress"' in html and 'id="upload-bar"' in html
    name = f"nojs-{uuid.uuid4().hex[:6]}"
    data = uuid.uuid4().bytes * 4096

    def create(fields: dict[str, str]) -> requests.Response:
        token = csrf_of(s.get(page, timeout=30).text)
        return s.post(f"{page}create/", data={"csrf_token": token, "next": "/project/images/", **fields},
                      files={"image_file": ("disk.raw", data, "application/octet-stream")}, timeout=60)

    # No name; a public image as a member (Glance's policy, as it worded it): nothing made.
    assert "Image Name is required" in create({"name": " ", "disk_format": "raw"}).text
    r = create({"name": name, "disk_format": "raw", "visibility": "public"})
    assert "Error:" in r.text
    assert not [i for i in conn.image.images() if i.name == name]
    r = create({"name": name, "disk_format": "raw", "visibility": "private"})
    assert f"Created image {name}" in r.text and r.url.endswith("/project/images/")
    image = next(i for i in conn.image.images() if i.name == name)
    assert image.status == "active" and image.size == len(data)
    # Another project may not delete it.
    other = http_login(live, "demo")
    r = _post(other, f"{page}{image.id}/delete/", f"{base}/project/", {})
    assert "Error:" in r.text and conn.image.get_image(image.id).status == "active"
    conn.image.delete_image(image.id)
