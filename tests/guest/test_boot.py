"""The guest image boots under QEMU (TCG) and configures itself: DHCP from dnsmasq, metadata through the real
proxy and API (or from a config drive with no network route), hostname, SSH key, user-data; then ssh works,
and the cirros user can do what CirrOS lets it (ping, sudo, wget, ip)."""

from __future__ import annotations

import asyncio
import base64
import secrets
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.guest import harness
from tests.metadata.instances import instance
from tests.metadata.test_api import Compute, Network, port
from tests.waiting import wait_for
from tinystack import config
from tinystack.guest import build
from tinystack.metadata import api, configdrive
from tinystack.metadata.service import MetadataService

pytestmark = [pytest.mark.guest, pytest.mark.privileged, pytest.mark.slow,
              pytest.mark.skipif(not harness.tools_present(), reason="needs qemu, genisoimage, dnsmasq, ssh, apt")]
MARKER = "USERDATA-MARKER-7f3a"
USER_DATA = f"#!/bin/sh\necho {MARKER} on $(hostname)\n"


@pytest.fixture(scope="module")
def image() -> build.BuiltImage:
    return asyncio.run(build.build(harness.SHARED_CACHE))


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


class ApiThread:
    """The metadata API on its unix socket, in a thread of the test process, with the given ports/instances."""

    def __init__(self, state_dir: Path, ports: list[dict[str, Any]], instances: dict[str, dict[str, Any]]) -> None:
        cfg = config.load(None, environ={}, overrides={"state_dir": str(state_dir)})
        self.svc = MetadataService(cfg, {"network": Network(ports), "compute": Compute(instances)})
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runner = web.AppRunner(api.app(self.svc).build())
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    async def _start(self) -> None:
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(scope="module")
def guest_and_net(image: build.BuiltImage,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[harness.Guest, harness.TestNetwork, Path]]:
    """One guest booted with the metadata service for the module: its boot is checked from the console, then the
    cirros user's abilities over ssh (nothing changes the guest, so one TCG boot serves both)."""
    workdir = tmp_path_factory.mktemp("metaguest")
    key, pub = harness.keypair(workdir)
    net = harness.TestNetwork(workdir, default_route=True)  # a subnet with a gateway, as Neutron gives
    inst = instance(uuid="5e1d2c3b-0000-4000-8000-0000000000a1", name="vm1", project="proj-t", ip=net.guest_ip,
                    network_id="net-t", key=pub, user_data=base64.b64encode(USER_DATA.encode()).decode())
    ports = [port("pt", "net-t", net.guest_ip, "proj-t", inst["uuid"])]
    state = workdir / "state"
    api_thread = ApiThread(state, ports, {inst["uuid"]: inst})
    guest = harness.Guest(image, workdir, netns=net.name,
                          nic=["-netdev", f"tap,id=n0,ifname={net.tap},script=no,downscript=no",
                               "-device", f"virtio-net-pci,netdev=n0,mac={net.mac}"])
    try:
        net.start(api_thread.svc.settings.socket, "net-t", api_thread.svc.settings.secret_file)
        guest.start()
        guest.wait_for("boot finished", timeout=150)
        yield guest, net, key
    finally:
        guest.stop()
        net.stop()
        api_thread.stop()


def test_boot_with_metadata_service(guest_and_net: tuple[harness.Guest, harness.TestNetwork, Path]) -> None:
    guest, net, key = guest_and_net
    log = guest.console.read_text()
    assert f"eth0: lease of {net.guest_ip}/24 obtained" in log
    assert "route 169.254.169.254/32 via 10.91.0.1" in log
    assert "successful after" in log and "metadata fetched from metadata service (openstack)" in log
    assert "hostname set to vm1" in log
    assert "installed 1 ssh public key(s) for cirros" in log and "tester@tinystack" in log
    assert f"user-data: {MARKER} on vm1" in log
    assert "dropbear sshd listening on port 22" in log
    result = net.ssh(key, "hostname; id -un")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["vm1", "cirros"]


def test_boot_with_config_drive_and_no_metadata_route(image: build.BuiltImage, workdir: Path) -> None:
    key, pub = harness.keypair(workdir)
    inst = instance(uuid="6f2e3d4c-0000-4000-8000-0000000000b2", name="vm2", key=pub, admin_pass="Pa55-word",
                    user_data=base64.b64encode(USER_DATA.encode()).decode())
    iso = harness.make_iso(configdrive.files_for(inst), workdir)
    # User-mode networking with restrict=on: DHCP works, nothing leaves the VM; port 22 is forwarded to a
    # loopback port inside a test namespace, so nothing listens on the host.
    ns = f"tsgt-{secrets.token_hex(4)}"  # not from the test's name: another run (another worker) may use it too
    subprocess.run(["ip", "netns", "add", ns], check=True)
    guest = harness.Guest(image, workdir, netns=ns, config_drive=iso,
                          nic=["-nic", "user,model=virtio-net-pci,restrict=on,hostfwd=tcp:127.0.0.1:2222-:22"])
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        guest.start()
        guest.wait_for("boot finished", timeout=150)
        log = guest.console.read_text()
        assert "found config drive on /dev/vdb (label config-2)" in log
        assert "metadata fetched from configdrive" in log
        assert "hostname set to vm2" in log
        assert "password for cirros set from admin_pass" in log and "Pa55-word" not in log
        assert f"user-data: {MARKER} on vm2" in log
        result = subprocess.run(["ip", "netns", "exec", ns, "ssh", "-i", str(key), *harness.SSH_OPTS, "-p", "2222",
                                 "cirros@127.0.0.1", "hostname"], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "vm2"
    finally:
        guest.stop()
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(workdir / "configdrive", ignore_errors=True)


def test_cirros_user_pings_sudoes_fetches_and_sees_routes(
        guest_and_net: tuple[harness.Guest, harness.TestNetwork, Path], workdir: Path) -> None:
    """Bootcamp Day 7 as the cirros user over ssh: ping the gateway, sudo, fetch a page, show addresses and routes."""
    _, net, key = guest_and_net
    site = workdir / "site"
    site.mkdir()
    (site / "hello.txt").write_text("hello from the gateway\n")
    server = subprocess.Popen(["ip", "netns", "exec", net.name, sys.executable, "-m", "http.server", "--bind",
                               net.gateway, "--directory", str(site), "8080"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # The guest is up already (the module's), so the page's server must be listening before it is fetched.
        wait_for(lambda: subprocess.run(["ss", "-N", net.name, "-Hltn", "sport = :8080"], capture_output=True,
                                        text=True).stdout.strip(), 30, "the gateway's web server", interval=0.1)

        def run(command: str) -> str:
            result = net.ssh(key, command)
            assert result.returncode == 0, f"{command}: {result.stdout}{result.stderr}"
            return result.stdout

        # cirros is not root: ping opens its raw socket through the setuid busybox.
        out = run(f"id -u; ping -c 1 {net.gateway}")
        assert out.splitlines()[0] == "1000", out
        assert f"bytes from {net.gateway}" in out and "1 packets received" in out, out
        assert run("sudo id -u").strip() == "0"
        assert run("sudo sh -c 'id -un; head -c 5 /etc/shadow'").split() == ["root", "root:"]
        assert run("sudo -i pwd").strip() == "/root"  # a login shell in root's home
        assert run("echo 'id -un' | sudo -i").strip() == "root"
        assert run(f"wget -q -O- http://{net.gateway}:8080/hello.txt") == "hello from the gateway\n"
        out = run("ip addr; ip route")
        assert "eth0" in out and f"inet {net.guest_ip}/24" in out, out
        assert f"default via {net.gateway} dev eth0" in out, out
    finally:
        server.terminate()
        server.wait(10)
