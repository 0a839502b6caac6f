"""Bootcamp Day 6, steps 16-18, with real guests: two servers on a new network behind a router; ICMP to a
guest passes only once a rule allows it, guests reach each other as their group allows, and they reach
the external network through the router."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.livecloud import LiveCloud

pytestmark = [pytest.mark.guest, pytest.mark.e2e, pytest.mark.slow, pytest.mark.privileged]


def _ssh(cloud: LiveCloud, key: Path, ip: str, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", cloud.external_netns, "ssh", "-i", str(key),
                           "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                           "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR", f"cirros@{ip}", command],
                          capture_output=True, text=True, timeout=60)


def test_two_guests_icmp_rule_and_snat(tmp_path: Path) -> None:
    cloud = LiveCloud(tmp_path / "state", compute__driver="qemu", guest__auto_build="true")
    try:
        cloud.wait_for_default_image()
        run = cloud.cli
        key = tmp_path / "k.pem"
        key.write_text(run("keypair", "create", "k", cloud="demo").stdout)
        key.chmod(0o600)
        run("network", "create", "net16", cloud="demo")
        run("subnet", "create", "--network", "net16", "--subnet-range", "192.168.16.0/24", "sub16", cloud="demo")
        run("router", "create", "r16", cloud="demo")
        run("router", "set", "--external-gateway", "public", "r16", cloud="demo")
        run("router", "add", "subnet", "r16", "sub16", cloud="demo")
        run("security", "group", "create", "web", cloud="demo")
        run("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22", "web", cloud="demo")
        ips = {}
        for name in ("g1", "g2"):
            server = cloud.cli_json("server", "create", "--image", "cirros-tiny", "--flavor", "m1.tiny", "--network",
                                    "net16", "--security-group", "web", "--key-name", "k", "--wait", name,
                                    cloud="demo")
            assert server["status"] == "ACTIVE"
            ips[name] = cloud.cli_json("server", "show", name, cloud="demo")["addresses"]["net16"][0]
        fips = {}
        for name in ("g1", "g2"):
            fips[name] = cloud.cli_json("floating", "ip", "create", "public", cloud="demo")["floating_ip_address"]
            run("server", "add", "floating", "ip", name, fips[name], cloud="demo")
        deadline = time.monotonic() + 120
        while _ssh(cloud, key, fips["g1"], "true").returncode != 0:
            assert time.monotonic() < deadline, "g1 never answered ssh through its floating IP"
            time.sleep(2)

        # The guests' login user cannot open raw sockets (busybox ping needs root), so ICMP is checked
        # from the host side of the external network, through g2's floating IP and the same group rules.
        def ping_g2() -> int:
            return subprocess.run(["ip", "netns", "exec", cloud.external_netns, "busybox", "ping", "-c", "2", "-W", "2",
                                   fips["g2"]], capture_output=True, timeout=30).returncode

        assert ping_g2() != 0, "ICMP passed without a rule"
        run("security", "group", "rule", "create", "--protocol", "icmp", "web", cloud="demo")
        deadline = time.monotonic() + 30
        while ping_g2() != 0:
            assert time.monotonic() < deadline, "ICMP still blocked after the rule was added"
            time.sleep(1)
        # Guest to guest, on the private network: g1 reaches g2's sshd (tcp/22 allowed by the group).
        probe = _ssh(cloud, key, fips["g1"], f"echo | nc -w 3 {ips['g2']} 22 | head -c 8")
        assert "SSH-2.0" in probe.stdout, probe.stdout + probe.stderr
        # Outbound through the router: a web server on the external network sees g1 by its floating IP (the
        # 1:1 NAT of a floating IP; a guest without one leaves as the router's gateway address, which the
        # dataplane tests cover), never by its private address.
        server = subprocess.Popen(["ip", "netns", "exec", cloud.external_netns, "python3", "-m", "http.server",
                                   "--bind", "172.24.4.1", "8099"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(1)
            fetched = _ssh(cloud, key, fips["g1"], "wget -q -O - http://172.24.4.1:8099/ | head -c 100")
            assert fetched.returncode == 0, fetched.stdout + fetched.stderr
        finally:
            server.terminate()
            log = server.communicate(timeout=10)[1]
        assert fips["g1"] in log and ips["g1"] not in log, log
    finally:
        cloud.stop()
