"""Bootcamp Day 6, steps 16-18, with real guests: two servers on a new network behind a router; ICMP to a
guest passes only once a rule allows it, guests reach each other as their group allows, and they reach
the external network through the router."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.e2e import guests
from tests.livecloud import LiveCloud
from tests.waiting import wait_for

pytestmark = [pytest.mark.guest, pytest.mark.e2e, pytest.mark.slow, pytest.mark.privileged]


def test_two_guests_icmp_rule_and_snat(guest_cloud: LiveCloud, tmp_path: Path) -> None:
    cloud = guest_cloud
    # The steps as the Bootcamp types them, with names of this test's own on the shared cloud.
    n = guests.unique("d6")
    net, sub, router, group, key_name = f"net16-{n}", f"sub16-{n}", f"r16-{n}", f"web-{n}", f"k-{n}"
    g1, g2 = f"g1-{n}", f"g2-{n}"
    fips: dict[str, str] = {}

    def run(*args: str) -> None:
        cloud.cli(*args, cloud="demo")

    try:
        key = tmp_path / "k.pem"
        key.write_text(cloud.cli("keypair", "create", key_name, cloud="demo").stdout)
        key.chmod(0o600)
        run("network", "create", net)
        run("subnet", "create", "--network", net, "--subnet-range", "192.168.16.0/24", sub)
        run("router", "create", router)
        run("router", "set", "--external-gateway", "public", router)
        run("router", "add", "subnet", router, sub)
        run("security", "group", "create", group)
        run("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22", group)
        ips = {}
        for name in (g1, g2):
            server = cloud.cli_json("server", "create", "--image", "cirros-0.6.3-x86_64-uec", "--flavor", "m1.tiny", "--network",
                                    net, "--security-group", group, "--key-name", key_name, "--wait", name,
                                    cloud="demo")
            assert server["status"] == "ACTIVE"
            ips[name] = cloud.cli_json("server", "show", name, cloud="demo")["addresses"][net][0]
        for name in (g1, g2):
            fips[name] = cloud.cli_json("floating", "ip", "create", "public", cloud="demo")["floating_ip_address"]
            run("server", "add", "floating", "ip", name, fips[name])
        wait_for(lambda: guests.ssh(cloud, key, fips[g1], "true").returncode == 0, guests.BOOT_TIMEOUT,
                 "g1 to answer ssh through its floating IP", interval=1)

        # The guests' login user cannot open raw sockets (busybox ping needs root), so ICMP is checked
        # from the host side of the external network, through g2's floating IP and the same group rules.
        def ping_g2() -> int:
            return subprocess.run(["ip", "netns", "exec", cloud.external_netns, "busybox", "ping", "-c", "2", "-W", "2",
                                   fips[g2]], capture_output=True, timeout=30).returncode

        assert ping_g2() != 0, "ICMP passed without a rule"
        run("security", "group", "rule", "create", "--protocol", "icmp", group)
        wait_for(lambda: ping_g2() == 0, 30, "ICMP to pass once the rule was added", interval=0.2)
        # Guest to guest, on the private network: g1 reaches g2's sshd (tcp/22 allowed by the group). g2 answers
        # pings before its sshd listens: wait for that from outside first, or g1's probe may be refused.
        guests.wait_ssh(cloud, key, fips[g2])
        probe = guests.ssh(cloud, key, fips[g1], f"echo | nc -w 3 {ips[g2]} 22 | head -c 8")
        assert "SSH-2.0" in probe.stdout, probe.stdout + probe.stderr
        # Outbound through the router: a web server on the external network sees g1 by its floating IP (the
        # 1:1 NAT of a floating IP; a guest without one leaves as the router's gateway address, which the
        # dataplane tests cover), never by its private address.
        server = subprocess.Popen(["ip", "netns", "exec", cloud.external_netns, "python3", "-m", "http.server",
                                   "--bind", "172.24.4.1", "8099"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: _listening(cloud, 8099), 30, "the web server on the external network to listen",
                     interval=0.1)
            fetched = guests.ssh(cloud, key, fips[g1], "wget -q -O - http://172.24.4.1:8099/ | head -c 100")
            assert fetched.returncode == 0, fetched.stdout + fetched.stderr
        finally:
            server.terminate()
            log = server.communicate(timeout=10)[1]
        assert fips[g1] in log and ips[g1] not in log, log
    finally:
        # The cloud is shared: what this test made goes, whether it passed or not.
        for name in (g1, g2):
            cloud.cli("server", "delete", "--wait", name, cloud="demo", check=False)
        for address in fips.values():
            cloud.cli("floating", "ip", "delete", address, cloud="demo", check=False)
        cloud.cli("router", "remove", "subnet", router, sub, cloud="demo", check=False)
        for kind, name in (("router", router), ("network", net), ("security group", group), ("keypair", key_name)):
            cloud.cli(*kind.split(), "delete", name, cloud="demo", check=False)


def _listening(cloud: LiveCloud, port: int) -> bool:
    out = subprocess.run(["ip", "netns", "exec", cloud.external_netns, "ss", "-Hltn", f"sport = :{port}"],
                         capture_output=True, text=True)
    return bool(out.stdout.strip())
