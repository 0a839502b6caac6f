"""Bootcamp Day 6 ("Field Training Exercise") in a real browser: the demo user builds a network, a router, rules,
a key pair, an instance with a floating IP and a volume, takes a snapshot and deletes it all, through the
dashboard only (fake compute driver and in-memory network: the flow, not the guest)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.console.standin import node_socket, rfb
from tests.dashboard import day6
from tests.dashboard.browser import Browser
from tests.dashboard.conftest import ARTIFACTS
from tests.dashboard.day6 import login  # the other browser modules import it from here
from tests.livecloud import LiveCloud

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def web(chrome: Any, live: LiveCloud) -> Iterator[Browser]:
    yield Browser(chrome, live.url("dashboard"), ARTIFACTS)


def test_day6_as_demo(web: Browser, live: LiveCloud, tmp_path: Path) -> None:
    b = web
    tag = uuid.uuid4().hex[:6]
    net, router, key, vm, vol = (f"day6-{kind}-{tag}" for kind in ("net", "router", "key", "vm", "vol"))
    started = time.monotonic()
    login(b, live, "demo")
    b.shot("overview")
    assert "Limit Summary" in b.body() and not b.all("#nav-admin")

    # An image of the project's own, uploaded through Images (the flow needs one to boot from).
    b.go("/project/images/")
    image_file = b.file(tmp_path / "disk.raw", b"\0" * 65536)
    b.fill("#create-image", {"name": f"day6-image-{tag}", "image_file": str(image_file)})
    b.wait_text("#images", f"day6-image-{tag}")
    b.no_error()
    b.shot("images")

    # Network and subnet; a router with the public gateway and an interface on the subnet, whose port's status
    # shows without a reload.
    day6.network_and_router(b, net, router, "10.66.0.0/24")
    assert "Internal Interface" in b.css("#router-interfaces").text
    assert b.css("#router-gateway").text != "None"
    b.shot("router")

    day6.ssh_and_icmp_rules(b)
    b.shot("security-group-rules")

    day6.key_pair(b, key)

    # Launch through the wizard and watch the instance go ACTIVE on the same page.
    b.go("/project/instances/launch/")
    b.shot("launch-wizard")
    day6.launch(b, vm, f"day6-image-{tag}", key, net, 60)
    assert "10.66.0." in b.row("#instances", vm).text
    b.shot("instances")

    server_url = day6.floating_ip(b, vm)

    # A volume, attached, seen in the instance's overview.
    b.go("/project/volumes/")
    b.fill("#create-volume", {"name": vol, "size": "1"})
    b.wait_text("#volumes", vol)
    b.mark()
    b.wait(lambda: b.row("#volumes", vol).get_attribute("data-status") == "available", 60, "the volume never became available")
    assert b.marked()
    b.click(b.row("#volumes", vol).find_element("css selector", "a"))
    b.fill("#attach-volume", {"instance": vm})
    b.wait(lambda: "in-use" in b.css("#volume-status").text, 60, "the volume never became in-use")
    b.d.get(server_url)
    b.wait_text("#volumes-attached", vol)
    b.shot("instance-overview")

    # A snapshot of the instance, and one of the volume.
    b.fill("#form-snapshot", {"snapshot_name": f"day6-snap-{tag}"})
    b.no_error()
    b.go("/project/images/")
    b.wait_text("#images", f"day6-snap-{tag}")
    b.go("/project/volumes/")
    b.click(b.row("#volumes", vol).find_element("css selector", "a"))
    b.fill("#snapshot-volume", {"snapshot_name": f"day6-volsnap-{tag}", "force": True})
    b.no_error()
    b.go("/project/snapshots/")
    b.wait_text("#snapshots", f"day6-volsnap-{tag}")

    # The other tabs of the instance.
    b.d.get(server_url + "?tab=log")
    assert b.all("#console-log") or b.all(".alert-error")
    console_tab(b, live, server_url)
    b.d.get(server_url + "?tab=action_log")
    b.wait_text("#action-log", "create")
    b.go("/project/network_topology/")
    b.wait_text("#topology", vm)
    b.shot("network-topology")

    delete_everything(b, live, tag)
    print(f"day 6 flow in {time.monotonic() - started:.1f}s; screenshots in {ARTIFACTS}")


def console_tab(b: Browser, live: LiveCloud, server_url: str) -> None:
    """The Console tab frames the console proxy's noVNC page (another origin), which completes the RFB handshake
    with a stand-in VNC server at the (fake-driver) server's socket."""
    server_id = server_url.rstrip("/").rsplit("/", 1)[1]
    with node_socket(live, server_id, "novnc", rfb):
        b.d.get(server_url + "?tab=console")
        frame = b.css("#console-frame")
        assert frame.get_attribute("src").startswith(live.url("console") + "/vnc_lite.html?")
        b.d.switch_to.frame(frame)
        try:
            b.wait(lambda: b.css("#status").text == "Connected to instance", 30, "the framed console never connected")
        finally:
            b.d.switch_to.default_content()
        b.shot("instance-console")


def delete_everything(b: Browser, live: LiveCloud, tag: str) -> None:
    demo = live.conn("demo")
    b.go("/project/snapshots/")
    b.click(b.row("#snapshots", f"day6-volsnap-{tag}").find_element("xpath", ".//button[text()='Delete Volume Snapshot']"))
    b.wait(lambda: not any(f"day6-volsnap-{tag}" == s.name for s in demo.block_storage.snapshots()), 60)
    b.go("/project/instances/")
    b.click(b.row("#instances", f"day6-vm-{tag}").find_element("css selector", "a"))
    b.click(b.css("#volumes-attached button"))
    b.no_error()
    b.wait(lambda: next(v for v in demo.block_storage.volumes() if v.name == f"day6-vol-{tag}").status == "available", 60)
    b.click(b.css("#action-delete"))
    b.no_error()
    b.wait(lambda: not any(s.name == f"day6-vm-{tag}" for s in demo.compute.servers()), 60)
    b.go("/project/volumes/")
    b.click(b.row("#volumes", f"day6-vol-{tag}").find_element("css selector", "a"))
    b.click(b.css("#delete-volume button"))
    b.no_error()
    day6.release_network(b, f"day6-net-{tag}", f"day6-router-{tag}", f"day6-key-{tag}")
    b.go("/project/images/")
    for name in (f"day6-snap-{tag}", f"day6-image-{tag}"):
        b.click(b.row("#images", name).find_element("xpath", ".//button[text()='Delete Image']"))
        b.no_error()
    b.wait(lambda: not any(v.name == f"day6-vol-{tag}" for v in demo.block_storage.volumes()), 60)
    left = [r.name for r in demo.network.routers()] + [n.name for n in demo.network.networks()] + \
           [k.name for k in demo.compute.keypairs()] + [i.name for i in demo.image.images()]
    assert not [n for n in left if n and tag in n], left
    assert not [f for f in demo.network.ips() if f.port_id is None and f.project_id == demo.current_project_id]
