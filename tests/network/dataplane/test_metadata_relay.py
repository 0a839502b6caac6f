"""A guest's metadata through the network host's relay (``[metadata] upstream``): the proxy in ``qdhcp-<net>``
forwards to the relay's unix socket, the relay (in the host's own namespace, where the qdhcp- namespace has no
route) to a metadata API listening on TCP only for it. The agent's cleanup stops the relay."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
from pathlib import Path

import pytest
from aiohttp import web

from tests.metadata.instances import instance
from tests.metadata.test_api import Compute, Network, port
from tests.network.dataplane.harness import Harness, dhcp_doc, network_doc, port_doc, sh
from tinystack import config
from tinystack.core import sockpath
from tinystack.metadata import api
from tinystack.metadata.service import MetadataService
from tinystack.network.dataplane import dnsmasq

pytestmark = [pytest.mark.dataplane, pytest.mark.privileged, pytest.mark.slow]


def test_guest_metadata_through_the_relay_to_a_tcp_api(tmp_path: Path) -> None:
    async def scenario() -> None:
        secret_file = tmp_path / "metadata-secret"
        secret_file.write_text("0123456789abcdef" * 4)
        (tmp_path / "api").mkdir()
        h = Harness(tmp_path)
        net = network_doc("10.0.0.0/24", vni=301)
        p1 = port_doc(net, "10.0.0.3")
        cfg = config.load(None, environ={}, overrides={"state_dir": str(tmp_path / "api"),
                                                       "metadata__secret_file": str(secret_file)})
        uuid = p1["device_id"]
        svc = MetadataService(cfg, {"network": Network([port(p1["id"], net["id"], "10.0.0.3", "proj-a", uuid)]),
                                    "compute": Compute({uuid: instance(uuid=uuid, name="vm-r", project="proj-a")})})
        runner = web.AppRunner(api.app(svc).build())
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        h.settings = dataclasses.replace(h.settings, metadata_secret=secret_file,
                                         metadata_upstream=f"http://127.0.0.1:{runner.addresses[0][1]}")
        h.agent = h._agent()
        relay_pid = h.settings.state_dir / "metadata-relay.pid"
        try:
            await h.start()
            g1 = h.guest(p1, "10.0.0.3/24")
            sh("ip", "-n", g1, "route", "add", "169.254.169.254/32", "via", "10.0.0.2")
            await h.put("network", net)
            dhcp = dhcp_doc(net, "10.0.0.2", [p1])
            dhcp["metadata"]["upstream"] = str(svc.settings.socket)  # what an API process publishes: not used
            await h.put("dhcp", dhcp)
            await h.put("port", p1)
            await h.active(("network", net), ("dhcp", net), ("port", p1))
            await h.wait_for(lambda: ":80 " in sh("ss", "-ltn", netns=f"qdhcp-{net['id']}").stdout)
            argv = json.loads((h.settings.state_dir / "dhcp" / net["id"] / "proxy-cmdline").read_text())
            assert argv[argv.index("--upstream") + 1] == str(sockpath.fitting(h.settings.state_dir / "metadata-relay.sock"))
            pid = dnsmasq.DhcpFiles.read_pid_file(relay_pid)
            assert pid is not None and dnsmasq.running(pid, "python")
            assert os.readlink(f"/proc/{pid}/ns/net") == os.readlink("/proc/self/ns/net")  # the host's namespace

            def fetch() -> tuple[str, str]:
                # Python's client in the guest namespace (this machine's busybox wget crashes).
                done = sh(sys.executable, "-c", "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen("
                          "'http://169.254.169.254/openstack/latest/meta_data.json', timeout=5).read().decode())",
                          netns=g1, check=False)
                return done.stdout, done.stderr

            body, err = "", ""
            for _ in range(20):  # the relay may still be binding its socket
                body, err = await asyncio.to_thread(fetch)
                if body:
                    break
                await asyncio.sleep(0.25)
            proxy_log = h.settings.state_dir / "dhcp" / net["id"] / "metadata-proxy.log"
            assert body, (err, proxy_log.read_text(), (h.settings.state_dir / "metadata-relay.log").read_text())
            assert json.loads(body)["uuid"] == uuid, body
            log = (h.settings.state_dir / "metadata-relay.log").read_text()
            assert "10.0.0.3 GET /openstack/latest/meta_data.json -> 200" in log, log
        finally:
            await h.close()
            await runner.cleanup()
        assert not dnsmasq.running(dnsmasq.DhcpFiles.read_pid_file(relay_pid), "python")

    asyncio.run(scenario())
