"""Network agent figures on the real Linux driver (root; namespaces with a random prefix, removed at the end).

1. a port doc → wired (tap on its bridge, firewall) and ACTIVE on the bus; baseline: one ``ip link show``.
2. a security-group change across N ports (default 1,000) → in force. Two of the N ports are guest
   namespaces; one pings the other every 2 ms from before the change (the rule it adds admits ICMP),
   so the first echo reply marks the moment the kernel enforces the new rules. The time until the
   agent is idle again is printed too, and afterwards iptables-save must show the new rule reached
   from every one of the N ports. Baselines: an empty ``iptables-restore``, and what one apply cost
   before rulesets were applied by difference (a whole replacement of the same tables).
   Then a group membership change: every port admits ingress from one group holding all N ports (the
   controller sends each port one rule per member address), and one more address joins.
3. a DHCP exchange, timed inside the guest by a raw-socket client (``benchmarks.netprobe``):
   DISCOVER→OFFER and the whole exchange; baseline: an ARP round trip to the DHCP port over the same
   path. busybox udhcpc (process start subtracted) is printed for comparison with earlier runs.
Usage: python -m benchmarks.network_dataplane [ports]
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.network.dataplane.harness import EGRESS_ALL, INGRESS_ICMP, Doc, Harness, dhcp_doc, network_doc, port_doc, sh
from tinystack.core import host
from tinystack.network.dataplane import firewall, names

ROOT = Path(__file__).resolve().parent.parent


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def probe(netns: str, *args: str) -> list[dict[str, float]]:
    out = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-m", "benchmarks.netprobe", *args],
                         cwd=ROOT, capture_output=True, text=True, check=True, timeout=60)
    return [json.loads(line) for line in out.stdout.splitlines()]


def rules_reached(saved: str, taps: list[str], rule: str) -> int:
    """How many of ``taps`` have an ingress jump to a chain holding ``rule`` in iptables-save output."""
    chains: dict[str, list[str]] = {}
    for line in saved.splitlines():
        if line.startswith("-A "):
            chain, _, spec = line[3:].partition(" ")
            chains.setdefault(chain, []).append(spec)
    targets = {}
    for specs in chains.values():
        for spec in specs:
            if "--physdev-out" in spec:
                targets[spec.split("--physdev-out ")[1].split()[0]] = spec.rsplit("-j ", 1)[1]
    return sum(1 for tap in taps if rule in chains.get(targets.get(tap, ""), []))


async def wire_one_by_one(h: Harness, net: Doc, node: str) -> None:
    base = []
    for _ in range(20):
        t = time.perf_counter()
        await host.run(["ip", "-n", node, "link", "show"])
        base.append(time.perf_counter() - t)
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


async def change_rules(h: Harness, net: Doc, node: str, n_ports: int) -> list[Doc]:
    ports = [port_doc(net, f"10.8.{1 + i // 250}.{1 + i % 250}") for i in range(n_ports)]
    pinger, target = ports[0], ports[1]
    guest = h.guest(pinger, "10.8.1.1/16")
    h.guest(target, "10.8.1.2/16")
    t = time.perf_counter()
    for port in ports:
        await h.put("port", port)
    await h.active(*[("port", p) for p in ports])
    print(f"{n_ports} ports wired and ACTIVE in {time.perf_counter() - t:.2f} s")
    for port in (pinger, target):
        assert await h.wait_for_forwarding(names.tap(port["id"])), "a guest's bridge port never forwarded"
    prober = subprocess.Popen(["ip", "netns", "exec", guest, sys.executable, "-m", "benchmarks.netprobe", "icmp",
                               "10.8.1.2", "60"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert prober.stdout is not None and prober.stdout.readline().strip() == "ready"
        await asyncio.sleep(0.5)  # ARP settles; ICMP to the target is still dropped by its ingress chain
        assert prober.poll() is None, "the target answered before the rule that admits ICMP existed"
        start_wall, t = time.time(), time.perf_counter()
        for port in ports:
            port["security_group_rules"] = [EGRESS_ALL, INGRESS_ICMP]
            await h.put("port", port)
        await h.settle()
        idle = time.perf_counter() - t
        first = await asyncio.to_thread(prober.stdout.readline)
    finally:
        prober.kill()
        prober.wait()
    assert first.strip() not in ("", "none"), "no echo reply after the change"
    in_force = float(first) - start_wall
    saved = sh("iptables-save", "-t", "filter", netns=node).stdout
    reached = rules_reached(saved, [names.tap(p["id"]) for p in ports], "-p icmp -j RETURN")
    assert reached == n_ports, f"the new rule reaches {reached} of {n_ports} ports"
    t = time.perf_counter()
    await host.run(["iptables-restore", "--noflush"], netns=node, input=b"*filter\nCOMMIT\n")
    empty = time.perf_counter() - t
    # The agent's tables, replaced whole by the three tools side by side: what every apply did before.
    known, networks = list(h.agent.docs["port"].values()), list(h.agent.docs["network"])
    v4, v6 = (firewall.render_iptables(known, networks, v).encode() for v in (4, 6))
    t = time.perf_counter()
    await asyncio.gather(host.run(["iptables-restore", "-w", "5"], netns=node, input=v4),
                         host.run(["ip6tables-restore", "-w", "5"], netns=node, input=v6),
                         host.run(["nft", "-f", "-"], netns=node, input=firewall.render_nft(known).encode()))
    assert await h.agent.driver.firewall_intact(), "the whole replacement differs from the agent's own ruleset"
    whole = time.perf_counter() - t
    print(f"security group change across {n_ports} ports: first probe packet admitted after {ms(in_force)}, "
          f"agent idle after {ms(idle)} (target ≤ 1 s); iptables-save shows the new rule for {reached}/{n_ports} "
          f"ports; baseline empty iptables-restore {ms(empty)} (ratio {in_force / empty:.1f}x); the same ruleset "
          f"replaced whole, as every apply did before: {ms(whole)}")
    return ports


def member_rule(address: str) -> Doc:
    """What the controller makes of "ingress from group G" for one member address."""
    return {"direction": "ingress", "ethertype": "IPv4", "protocol": None, "port_range_min": None,
            "port_range_max": None, "remote_ip_prefix": f"{address}/32"}


async def join_group(h: Harness, node: str, ports: list[Doc]) -> None:
    """Every port admits ingress from one group that holds them all (the default group); one address joins."""
    members = [member_rule(p["fixed_ips"][0]["ip_address"]) for p in ports]
    t = time.perf_counter()
    for port in ports:
        port["security_group_rules"] = [EGRESS_ALL, *members]
        await h.put("port", port)
    await h.settle()
    setup = time.perf_counter() - t
    joined = member_rule("10.8.250.250")
    t = time.perf_counter()
    for port in ports:
        port["security_group_rules"] = [*port["security_group_rules"], joined]
        await h.put("port", port)
    await h.settle()
    idle = time.perf_counter() - t
    saved = sh("iptables-save", "-t", "filter", netns=node).stdout
    reached = rules_reached(saved, [names.tap(p["id"]) for p in ports], "-s 10.8.250.250/32 -j RETURN")
    assert reached == len(ports), f"the new member reaches {reached} of {len(ports)} ports"
    rules = sum(1 for line in saved.splitlines() if line.startswith("-A "))
    print(f"group membership change ({len(ports)} ports admit ingress from one group of all of them, "
          f"{len(ports) ** 2:,} member rules in the documents): a new member in force on every port after "
          f"{ms(idle)} (agent idle, iptables-save checked); {rules:,} rules in the filter table; "
          f"making every port a member took {ms(setup)}")


async def dhcp_exchange(h: Harness) -> None:
    dnet = network_doc("10.9.0.0/24", vni=998)
    vm = port_doc(dnet, "10.9.0.3")
    guest = h.guest(vm)
    await h.put("network", dnet)
    await h.put("dhcp", dhcp_doc(dnet, "10.9.0.2", [vm]))
    await h.put("port", vm)
    await h.active(("dhcp", dnet), ("port", vm))
    assert await h.wait_for_forwarding(names.tap(vm["id"])), "the guest's bridge port never forwarded"
    mac = vm["mac_address"]
    first = probe(guest, "dhcp", "eth0", mac, "1")[0]  # no lease yet: a guest's first boot
    rounds = probe(guest, "dhcp", "eth0", mac, "20")
    arps = probe(guest, "arp", "eth0", mac, "10.9.0.2", "20")
    offer = statistics.median(r["offer_ms"] for r in rounds)
    exchange = statistics.median(r["exchange_ms"] for r in rounds)
    arp = statistics.median(r["arp_ms"] for r in arps)
    print(f"DHCP DISCOVER→OFFER: median {offer:.2f} ms, whole exchange {exchange:.2f} ms (target ≤ 100 ms); "
          f"first exchange of a new guest {first['offer_ms']:.2f} / {first['exchange_ms']:.2f} ms; "
          f"baseline ARP round trip to the DHCP port {arp:.2f} ms, ratio {offer / arp:.1f}x")
    udhcpc, start = [], []
    for _ in range(10):
        sh("ip", "-n", guest, "addr", "flush", "dev", "eth0")
        t = time.perf_counter()
        h.dhcp_client(guest)
        udhcpc.append(time.perf_counter() - t)
        t = time.perf_counter()
        subprocess.run(["ip", "netns", "exec", guest, "busybox", "true"], check=True)
        start.append(time.perf_counter() - t)
    print(f"busybox udhcpc DISCOVER→ACK, process start subtracted: "
          f"{ms(statistics.median(udhcpc) - statistics.median(start))} (its own packet-socket setup and "
          f"script run; the server's part is the exchange above)")


async def main(n_ports: int) -> None:
    h = Harness(Path(tempfile.mkdtemp(prefix="tsbench-")), resync=30)
    try:
        await h.start()
        node = h.settings.node_netns
        net = network_doc("10.8.0.0/16", vni=999)
        await h.put("network", net)
        await h.active(("network", net))
        await wire_one_by_one(h, net, node)
        ports = await change_rules(h, net, node, n_ports)
        await join_group(h, node, ports)
        await dhcp_exchange(h)
    finally:
        await h.close()
        shutil.rmtree(h.tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
