"""Network agent figures on the real Linux driver (root; namespaces with a random prefix, removed at the end).

1. a port doc → wired (tap on its bridge, firewall) and ACTIVE on the bus; baseline: one ``ip link show``.
2. a security-group change across N ports (default 1,000) → the new ruleset in force; baseline: an empty
   iptables-restore.
3. a DHCP exchange (busybox udhcpc DISCOVER→ACK, process start included); baseline: starting busybox.
Usage: python benchmarks/network_dataplane.py [ports]
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.network.dataplane.harness import EGRESS_ALL, INGRESS_ICMP, Harness, dhcp_doc, network_doc, port_doc, sh
from tinystack.core import host


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


async def main(n_ports: int) -> None:
    h = Harness(Path(tempfile.mkdtemp(prefix="tsbench-")), resync=30)
    try:
        await h.start()
        node = h.settings.node_netns
        base = []
        for _ in range(20):
            t = time.perf_counter()
            await host.run(["ip", "-n", node, "link", "show"])
            base.append(time.perf_counter() - t)
        net = network_doc("10.8.0.0/16", vni=999)
        await h.put("network", net)
        await h.active(("network", net))
        # 1. one port at a time, to ACTIVE.
        wire = []
        for i in range(20):
            port = port_doc(net, f"10.8.0.{10 + i}")
            t = time.perf_counter()
            await h.put("port", port)
            while h.status_of("port", port["id"]) != {"status": "ACTIVE"}:
                await asyncio.sleep(0.001)
            wire.append(time.perf_counter() - t)
        print(f"port wired+ACTIVE: median {ms(statistics.median(wire))}, max {ms(max(wire))} "
              f"(target ≤ 300 ms); baseline ip link show {ms(statistics.median(base))}, "
              f"ratio {statistics.median(wire) / statistics.median(base):.1f}x")
        # 2. N ports, then one rule change on all of them.
        ports = [port_doc(net, f"10.8.{1 + i // 250}.{1 + i % 250}") for i in range(n_ports)]
        t = time.perf_counter()
        for port in ports:
            await h.put("port", port)
        await h.active(*[("port", p) for p in ports])
        print(f"{n_ports} ports wired and ACTIVE in {time.perf_counter() - t:.2f} s")
        t = time.perf_counter()
        await host.run(["iptables-restore", "--noflush"], netns=node, input=b"*filter\nCOMMIT\n")
        empty = time.perf_counter() - t
        t = time.perf_counter()
        for port in ports:
            port["security_group_rules"] = [EGRESS_ALL, INGRESS_ICMP]
            await h.put("port", port)
        await h.settle()
        change = time.perf_counter() - t
        rules = sh("iptables-save", "-t", "filter", netns=node).stdout
        assert rules.count("-p icmp") >= n_ports, "the new rule is not in force on every port"
        print(f"security group change across {n_ports} ports in force (real iptables-restore): {ms(change)} "
              f"(target ≤ 1 s); baseline empty iptables-restore {ms(empty)}, ratio {change / empty:.1f}x")
        # 3. DHCP.
        dnet = network_doc("10.9.0.0/24", vni=998)
        vm = port_doc(dnet, "10.9.0.3")
        guest = h.guest(vm)
        await h.put("network", dnet)
        await h.put("dhcp", dhcp_doc(dnet, "10.9.0.2", [vm]))
        await h.put("port", vm)
        await h.active(("dhcp", dnet), ("port", vm))
        h.dhcp_client(guest)  # warm up (ARP, caches)
        dhcp, start = [], []
        for _ in range(10):
            sh("ip", "-n", guest, "addr", "flush", "dev", "eth0")
            t = time.perf_counter()
            h.dhcp_client(guest)
            dhcp.append(time.perf_counter() - t)
            t = time.perf_counter()
            subprocess.run(["ip", "netns", "exec", guest, "busybox", "true"], check=True)
            start.append(time.perf_counter() - t)
        exchange = statistics.median(dhcp) - statistics.median(start)
        print(f"DHCP DISCOVER→ACK: median {ms(statistics.median(dhcp))} with udhcpc start, {ms(exchange)} without "
              f"(target ≤ 100 ms); baseline busybox start {ms(statistics.median(start))}")
    finally:
        await h.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
