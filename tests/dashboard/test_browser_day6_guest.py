"""Bootcamp Day 6 in a real browser with a real guest: on a cloud with the QEMU driver (TCG where KVM does not
work) and the real dataplane, the demo user builds a network, a router, SSH and ICMP rules and a key pair,
launches the default image through the wizard, associates a floating IP, and then the test itself sshes to the
guest with the downloaded key, sees the guest's screen in the Console tab's noVNC canvas and types into it a
command the guest runs; then everything is deleted through the dashboard. One TCG boot."""

from __future__ import annotations

import contextlib
import struct
import subprocess
import time
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from tests.dashboard import day6
from tests.dashboard.browser import Browser
from tests.dashboard.conftest import ARTIFACTS
from tests.dashboard.day6 import login
from tests.e2e import guests
from tests.livecloud import LiveCloud
from tests.waiting import wait_for
from tinystack.guest import settings as guest_settings

pytestmark = [pytest.mark.browser, pytest.mark.privileged]

# The guest image's documented login for its first VT (tinystack/guest/init/cloud-setup) when no admin_pass is given.
GUEST_USER, GUEST_PASSWORD = "cirros", "gocubsgo"


@pytest.fixture(scope="module")
def guest_live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCloud]:
    """A cloud of its own that boots real guests (the browser tier's session cloud has the fake drivers)."""
    cloud = LiveCloud(tmp_path_factory.mktemp("dashguest"), compute__driver="qemu", guest__auto_build="true")
    try:
        cloud.wait_for_default_image()
        yield cloud
    finally:
        cloud.stop()


@pytest.fixture(scope="module")
def web(chrome: Any, guest_live: LiveCloud) -> Iterator[Browser]:
    yield Browser(chrome, guest_live.url("dashboard"), ARTIFACTS)


def png_pixels(png: bytes) -> list[int]:
    """The grey levels of an 8-bit RGB or RGBA PNG (what Chromium's screenshots are), one per pixel."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, data, width = 8, b"", 0
    height = depth = colour = 0
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        chunk = png[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            assert depth == 8 and colour in (2, 6) and not interlace, (depth, colour, interlace)
        elif kind == b"IDAT":
            data += chunk
    raw = zlib.decompress(data)
    bpp = 3 if colour == 2 else 4
    stride = width * bpp
    prev = bytearray(stride)
    grey: list[int] = []
    for y in range(height):
        line = raw[y * (stride + 1):(y + 1) * (stride + 1)]
        kind, row = line[0], bytearray(line[1:])
        for i in range(stride):  # the PNG filters (RFC 2083 6.2 to 6.6)
            a = row[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                row[i] = (row[i] + a) & 0xFF
            elif kind == 2:
                row[i] = (row[i] + b) & 0xFF
            elif kind == 3:
                row[i] = (row[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        grey.extend((row[x] + row[x + 1] + row[x + 2]) // 3 for x in range(0, stride, bpp))
        prev = row
    return grey


def variance(values: list[int]) -> float:
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values) / len(values)


def test_day6_with_a_real_guest(web: Browser, guest_live: LiveCloud) -> None:
    b, live = web, guest_live
    tag = uuid.uuid4().hex[:6]
    net, router, key, vm = (f"day6g-{kind}-{tag}" for kind in ("net", "router", "key", "vm"))
    image = guest_settings.load(live.config).image_name
    demo = live.conn("demo")
    started = time.monotonic()
    try:
        login(b, live, "demo")
        day6.network_and_router(b, net, router, "10.67.0.0/24")
        day6.ssh_and_icmp_rules(b)
        pem = day6.key_pair(b, key)  # downloaded once; it is what the test sshes with
        pem.chmod(0o600)
        b.go("/project/instances/launch/")
        day6.launch(b, vm, image, key, net, guests.BOOT_TIMEOUT, flavor="m1.tiny")
        assert "10.67.0." in b.row("#instances", vm).text
        b.shot("guest-instances")

        server_url = day6.floating_ip(b, vm)
        server_id = server_url.rstrip("/").rsplit("/", 1)[1]
        assert qemu_of(server_id), "no QEMU runs the instance"
        fip = next(e.text.split()[0] for e in b.all("#ip-addresses li") if "(floating)" in e.text)

        # From the test process, as a user would from the outside: ssh with the downloaded key.
        guests.wait_ssh(live, pem, fip)
        out = guests.ssh(live, pem, fip, "hostname; id -un")
        assert out.returncode == 0 and out.stdout.split() == [vm, GUEST_USER], out  # the name came by metadata
        wait_for(lambda: subprocess.run(["ip", "netns", "exec", live.external_netns, "busybox", "ping", "-c1", "-W2", fip],
                                        capture_output=True).returncode == 0, 30, f"{fip} to answer ping")

        console(b, live, server_url, pem, fip, tag)
    except BaseException:
        # What the flow made goes even when it failed half-way (a leftover must not hide the failure).
        with guests.leftovers(demo) as made:
            for server in demo.compute.servers():
                made.server(server)
        raise
    delete_everything(b, demo, tag, server_id)
    print(f"day 6 with a guest in {time.monotonic() - started:.1f}s; screenshots in {ARTIFACTS}")


def console(b: Browser, live: LiveCloud, server_url: str, pem: Path, fip: str, tag: str) -> None:
    """The Console tab's noVNC canvas shows the guest's first VT (its login prompt), and keys typed into it reach
    the guest: a login, then a command that leaves a file the test finds over ssh."""
    b.d.get(server_url + "?tab=console")
    frame = b.css("#console-frame")
    assert frame.get_attribute("src").startswith(live.url("console") + "/vnc_lite.html?")
    b.d.switch_to.frame(frame)
    try:
        b.wait(lambda: b.css("#status").text.startswith("Connected"), 60, "the framed console never connected")
        canvas = b.wait(lambda: b.all("#screen canvas")[0], 30, "noVNC drew no canvas")
        # The first framebuffer update paints the VT: until then the canvas is one colour.
        shot: list[bytes] = []

        def painted() -> bool:
            shot[:] = [canvas.screenshot_as_png]
            return variance(png_pixels(shot[0])) > 1.0

        b.wait(painted, 60, "the console canvas stayed blank")
        (ARTIFACTS / "guest-console.png").write_bytes(shot[0])

        mark = f"/tmp/mark-{tag}"
        canvas.click()  # noVNC takes the keyboard on a click
        typed(b, live, pem, fip, mark)
        b.d.save_screenshot(str(ARTIFACTS / "guest-console-typed.png"))
    finally:
        b.d.switch_to.default_content()
    b.shot("guest-instance-console")


def typed(b: Browser, live: LiveCloud, pem: Path, fip: str, mark: str) -> None:
    """Log in on the canvas and run ``touch mark``; done when ssh finds the file. getty and login flush what was
    typed ahead of their prompts, which the canvas does not tell apart, so the keys go at a human's pace and the
    whole sequence is typed again, slower, if the file does not appear."""
    for pace in (1.5, 3.0, 6.0):
        keys = ActionChains(b.d)
        # Enter first: a fresh prompt whatever was half-typed; only unshifted characters, whatever the keymap.
        for line in ("", GUEST_USER, GUEST_PASSWORD, f"touch {mark}"):
            keys.send_keys(line + Keys.ENTER).pause(pace)
        keys.perform()
        with contextlib.suppress(AssertionError):
            wait_for(lambda: guests.ssh(live, pem, fip, f"test -e {mark}").returncode == 0, 30,
                     f"{mark} typed into the console canvas to appear in the guest", interval=2)
            return
    raise AssertionError(f"{mark}, typed into the console canvas three times, never appeared in the guest")


def qemu_of(server_id: str) -> list[str]:
    """The pids of processes whose command line names the instance (its QEMU: ``-name guest=instance-<id>``)."""
    found = []
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if proc.name.isdigit() and f"instance-{server_id}".encode() in (proc / "cmdline").read_bytes():
                found.append(proc.name)
    return found


def delete_everything(b: Browser, demo: Any, tag: str, server_id: str) -> None:
    """Through the dashboard: the instance, the floating IP, the router's interface and the router, the network
    and the key pair; then nothing of them is left."""
    vm = f"day6g-vm-{tag}"
    b.go("/project/instances/")
    b.click(b.row("#instances", vm).find_element("css selector", "a"))
    b.click(b.css("#action-delete"))
    b.no_error()
    wait_for(lambda: not any(s.name == vm for s in demo.compute.servers()), 120, f"{vm} to be deleted")
    day6.release_network(b, f"day6g-net-{tag}", f"day6g-router-{tag}", f"day6g-key-{tag}")
    wait_for(lambda: not qemu_of(server_id), 30, f"the QEMU of {vm} to end")
    left = [r.name for r in demo.network.routers()] + [n.name for n in demo.network.networks()] + \
           [k.name for k in demo.compute.keypairs()] + [s.name for s in demo.compute.servers()]
    assert not [n for n in left if n and tag in n], left
    assert not [f for f in demo.network.ips() if f.project_id == demo.current_project_id]
