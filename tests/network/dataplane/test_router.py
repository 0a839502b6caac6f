"""Routers on the real dataplane: SNAT to the external namespace, floating IPs in and out."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from tests.network.dataplane.harness import EGRESS_ALL, INGRESS_ICMP, Harness, mac, network_doc, new_id, port_doc, sh

pytestmark = [pytest.mark.dataplane, pytest.mark.privileged, pytest.mark.slow]

# A one-shot TCP server in the external namespace that prints the address a connection came from.
PEER_SERVER = ("import socket;s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1);"
               "s.bind(('0.0.0.0',8099));s.listen();c,a=s.accept();print(a[0])")


def seen_from_outside(h: Harness, guest: str) -> str:
    server = subprocess.Popen(["ip", "netns", "exec", h.ext_ns, sys.executable, "-c", PEER_SERVER],
                              stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(20):
            if sh("busybox", "nc", "-w", "1", "172.24.9.1", "8099", netns=guest, check=False).returncode == 0:
                break
        out, _ = server.communicate(timeout=10)
        return out.strip()
    finally:
        server.kill()


def test_snat_floating_ip_and_disassociation(tmp_path: Path) -> None:
    async def scenario() -> None:
        h = Harness(tmp_path)
        try:
            await h.start()
            ext = network_doc("172.24.9.0/24", external=True)
            net = network_doc("10.0.0.0/24", vni=301)
            vm = port_doc(net, "10.0.0.3", [EGRESS_ALL, INGRESS_ICMP])
            guest = h.guest(vm, "10.0.0.3/24", gateway="10.0.0.1")
            gw_port, itf_port = new_id(), new_id()
            router = {"id": new_id(), "project_id": "p1", "admin_state_up": True,
                      "gateway": {"port_id": gw_port, "network_id": ext["id"], "mac_address": mac(), "ip": "172.24.9.10",
                                  "cidr": "172.24.9.0/24", "gateway_ip": "172.24.9.1", "enable_snat": True},
                      "interfaces": [{"port_id": itf_port, "mac_address": mac(), "ip": "10.0.0.1", "cidr": "10.0.0.0/24",
                                      "subnet_id": net["subnets"][0]["id"]}],
                      "routes": [], "floating_ips": []}
            for kind, doc in (("network", ext), ("network", net), ("router", router), ("port", vm)):
                await h.put(kind, doc)
            await h.active(("router", router), ("port", vm))
            ns = f"qrouter-{router['id']}"
            addrs = sh("ip", "-br", "-4", "addr", netns=ns).stdout
            assert f"qr-{itf_port[:11]}" in addrs and "10.0.0.1/24" in addrs and "172.24.9.10/24" in addrs
            assert "172.24.9.1/24" in sh("ip", "-br", "addr", netns=h.ext_ns).stdout  # the one veth, gateway IP
            assert h.ping_eventually(guest, "172.24.9.1")
            assert await asyncio.to_thread(seen_from_outside, h, guest) == "172.24.9.10"  # SNAT to the gateway
            assert not h.ping(h.ext_ns, "172.24.9.20")
            router["floating_ips"] = [{"id": new_id(), "floating_ip": "172.24.9.20", "fixed_ip": "10.0.0.3"}]
            await h.put("router", router)
            await h.active(("router", router))
            assert h.ping_eventually(h.ext_ns, "172.24.9.20")  # the host side reaches the guest by its FIP
            assert await asyncio.to_thread(seen_from_outside, h, guest) == "172.24.9.20"  # 1:1 SNAT
            router["floating_ips"] = []
            await h.put("router", router)
            await h.settle()
            assert not h.ping(h.ext_ns, "172.24.9.20")
            await h.delete("router", router["id"])
            await h.settle()
            assert not Path("/run/netns", ns).exists()
        finally:
            await h.close()

    asyncio.run(scenario())
