"""Trunk subport figures on the real Linux driver (root; namespaces with a random prefix, removed at the end).

1. wiring: a subport's port document → ACTIVE (veth relay on its bridge, two eBPF filters loaded by ``tc``);
   baseline: a plain instance port's document → ACTIVE on the same agent, in the same run.
2. the path: ICMP round trips from a guest through its trunk (tagged, relayed by the filters, onto the subport's
   network; the guest's VLAN interface is two more eBPF filters on its eth0, as in the dataplane test, so their
   cost is in the figure too); baseline: the same guest's untagged round trips to a peer on the parent's network.
Usage: python -m benchmarks.trunk_dataplane [rounds]
"""

from __future__ import annotations

import asyncio
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.network.dataplane.harness import (
    EGRESS_ALL,
    INGRESS_ICMP,
    Doc,
    Harness,
    guest_vlan,
    network_doc,
    port_doc,
    sh,
)


def rtt(h: Harness, ns: str, target: str, count: int) -> float:
    """Average round trip in ms of ``count`` pings (busybox's own summary)."""
    out = sh("busybox", "ping", "-c", str(count), "-W", "1", target, netns=ns, check=False, timeout=120).stdout
    found = re.search(r"min/avg/max = [\d.]+/([\d.]+)/", out)
    if not found:
        raise SystemExit(f"no answer from {target}: {out}")
    return float(found.group(1))


async def wired(h: Harness, doc: Doc) -> float:
    start = time.perf_counter()
    await h.put("port", doc)
    await h.active(("port", doc))
    return time.perf_counter() - start


async def main(rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        h = Harness(Path(tmp))
        try:
            await h.start()
            rules = [EGRESS_ALL, INGRESS_ICMP]
            parent_net, sub_net = network_doc("10.0.1.0/24", vni=331), network_doc("10.0.2.0/24", vni=332)
            await h.put("network", parent_net)
            await h.put("network", sub_net)
            parent = port_doc(parent_net, "10.0.1.3", rules)
            trunk_guest = h.guest(parent, "10.0.1.3/24")
            # Guests (their veths stand where the taps go) are made before the agent looks at the node.
            peer_parent, peer_sub = port_doc(parent_net, "10.0.1.4", rules), port_doc(sub_net, "10.0.2.4", rules)
            h.guest(peer_parent, "10.0.1.4/24")
            h.guest(peer_sub, "10.0.2.4/24")
            await wired(h, parent)
            plain, sub = [], []
            for i in range(rounds):
                plain.append(await wired(h, port_doc(sub_net, f"10.0.2.{100 + i}", rules)))
                doc = port_doc(sub_net, f"10.0.2.{150 + i}", rules, owner="trunk:subport")
                doc["vlan"] = {"parent_id": parent["id"], "segmentation_type": "vlan", "segmentation_id": 10 + i}
                sub.append(await wired(h, doc))
            p, s = statistics.median(plain), statistics.median(sub)
            print(f"wiring, median of {rounds}: plain port {p * 1000:.1f} ms, subport {s * 1000:.1f} ms "
                  f"(ratio {s / p:.2f})")

            trunk_sub = port_doc(sub_net, "10.0.2.3", rules, owner="trunk:subport")
            trunk_sub["mac_address"] = parent["mac_address"]
            trunk_sub["vlan"] = {"parent_id": parent["id"], "segmentation_type": "vlan", "segmentation_id": 100}
            for doc in (peer_parent, peer_sub, trunk_sub):
                await h.put("port", doc)
            await h.active(("port", peer_parent), ("port", peer_sub), ("port", trunk_sub))
            h.ping_eventually(trunk_guest, "10.0.1.4")
            direct = rtt(h, trunk_guest, "10.0.1.4", 50)
            sh("ip", "addr", "flush", "dev", "eth0", netns=trunk_guest)
            sh("ip", "addr", "add", "10.0.2.3/24", "dev", "eth0", netns=trunk_guest)
            guest_vlan(Path(tmp), trunk_guest, 100)
            h.ping_eventually(trunk_guest, "10.0.2.4")
            relayed = rtt(h, trunk_guest, "10.0.2.4", 50)
            print(f"ICMP round trip, average of 50: untagged to the parent's network {direct:.3f} ms, tagged "
                  f"through the subport {relayed:.3f} ms (ratio {relayed / direct:.2f})")
        finally:
            await h.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10))
