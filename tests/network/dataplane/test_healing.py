"""Self-healing and lifecycle: a killed dnsmasq, a flushed chain or a deleted tap come back; stop cleans up or adopts."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.network.dataplane.harness import EGRESS_ALL, INGRESS_ICMP, Harness, dhcp_doc, network_doc, port_doc, sh
from tinystack.network.dataplane import firewall, names
from tinystack.network.dataplane.dnsmasq import DhcpFiles

pytestmark = [pytest.mark.dataplane, pytest.mark.privileged, pytest.mark.slow]


def _port_jumps(h: Harness) -> int:
    """The physdev jumps from the dispatch chains into the ports' chains."""
    out = sh("iptables-save", "-t", "filter", netns=h.settings.node_netns).stdout
    return sum(1 for line in out.splitlines() if line.startswith("-A ") and "--physdev-" in line)


def _chain_rules(h: Harness, chain: str) -> int:
    out = sh("iptables-save", "-t", "filter", netns=h.settings.node_netns).stdout
    return sum(1 for line in out.splitlines() if line.startswith(f"-A {chain} "))


def _antispoof_rules(h: Harness, chain: str) -> int:
    out = sh("nft", "list", "chain", "bridge", firewall.NFT_TABLE, chain, netns=h.settings.node_netns, check=False)
    return sum(1 for line in out.stdout.splitlines() if line.strip().endswith("drop"))


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie (unreaped by this container's init) is dead


def test_host_state_lost_comes_back_and_stop_removes_everything(tmp_path: Path) -> None:
    async def scenario() -> None:
        h = Harness(tmp_path, resync=0.5)
        try:
            await h.start()
            net = network_doc("10.1.0.0/24", vni=401)
            vm = port_doc(net, "10.1.0.3", [EGRESS_ALL, INGRESS_ICMP])
            for kind, doc in (("network", net), ("dhcp", dhcp_doc(net, "10.1.0.2", [vm])), ("port", vm)):
                await h.put(kind, doc)
            await h.active(("dhcp", net), ("port", vm))
            node, tap = h.settings.node_netns, names.tap(vm["id"])
            files = DhcpFiles(h.settings.state_dir, net["id"])
            # dnsmasq killed: restarted with a new pid.
            old = files.read_pid()
            assert old is not None
            os.kill(old, signal.SIGKILL)
            await h.wait_for(lambda: files.read_pid() not in (None, old) and Path(f"/proc/{files.read_pid()}").exists())
            # The security-group chains flushed: the whole ruleset is back.
            before = _port_jumps(h)
            assert before == 2
            sh("iptables", "-F", netns=node)
            await h.wait_for(lambda: _port_jumps(h) == before)
            # One port chain flushed, or its anti-spoofing chain: each comes back too.
            egress = f"{firewall.PREFIX}o{vm['id'][:11]}"
            rules = _chain_rules(h, egress)
            assert rules == 3  # DHCP request, own address and MAC, DROP
            sh("iptables", "-F", egress, netns=node)
            await h.wait_for(lambda: _chain_rules(h, egress) == rules)
            assert _antispoof_rules(h, f"p{vm['id'][:11]}") == 2
            sh("nft", "flush", "chain", "bridge", firewall.NFT_TABLE, f"p{vm['id'][:11]}", netns=node)
            await h.wait_for(lambda: _antispoof_rules(h, f"p{vm['id'][:11]}") == 2)
            # The tap deleted: created again, on its bridge.
            sh("ip", "-n", node, "link", "del", tap)
            await h.wait_for(lambda: f"master {names.bridge(net['id'])}" in sh("ip", "-n", node, "link", "show", tap,
                                                                                check=False).stdout)
            # Stop without cleanup, start again: everything is adopted, nothing restarted.
            pid = files.read_pid()
            index = sh("cat", f"/sys/class/net/{tap}/ifindex", netns=node).stdout
            await h.restart(cleanup=False)
            await h.agent.handle({"op": "put", "type": "network", "id": net["id"], "generation": 99, "spec": net})
            await h.active(("network", net))
            assert files.read_pid() == pid and Path(f"/proc/{pid}").exists()
            assert sh("cat", f"/sys/class/net/{tap}/ifindex", netns=node).stdout == index
            # A sync that no longer lists the DHCP server and the port: both are garbage.
            await h.agent.handle({"op": "sync", "types": ["network", "dhcp", "port", "router"],
                                  "ids": {"network": [net["id"]], "dhcp": [], "port": [], "router": []}})
            await h.wait_for(lambda: not Path("/run/netns", f"qdhcp-{net['id']}").exists())
            await h.wait_for(lambda: sh("ip", "-n", node, "link", "show", tap, check=False).returncode != 0)
            assert not _alive(pid)
        finally:
            await h.close()
        netns = [p.name for p in Path("/run/netns").iterdir()]
        assert not [n for n in netns if n.startswith(h.prefix) or net["id"] in n]
        procs = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        assert str(tmp_path) not in procs

    asyncio.run(scenario())
