"""A split cloud with real guests (issue 15's cluster), in OS processes: PostgreSQL and RabbitMQ (the machine's own,
as the db tier uses them), two ``tinystack api`` behind HAProxy, one ``tinystack conductor``, and node machines,
each a ``tinystack agent`` process of its own with the QEMU compute, Linux network and (on the first) file volume
drivers.

How a node "machine" is simulated: its agent process keeps the host's process namespace, as one node's agents do
under ``tinystack up``, and puts its dataplane (QEMU, bridges, VXLAN, taps, the NBD server) in its node namespace
``tsnode-<host>``. The test makes the underlay: a namespace holding one bridge; each agent plugs its node namespace
into it with a veth carrying the underlay address and VXLAN peers it reads from its environment
(``TINYSTACK_NETWORK_UNDERLAY_IP``, ``..._VXLAN_PEERS``, ``TINYSTACK_COMPUTE_LIVE_MIGRATION_INBOUND_ADDR``, as
docs/deployment.md shows). The control plane (database, broker, APIs) is reached on loopback; the guests' traffic,
live migration and NBD cross the underlay only. The instance storage is one directory for every node (shared
instance storage, as NFS would be). The external network is a namespace of the test's (``external_netns``), so
nothing touches the host's own interfaces.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import uuid
from pathlib import Path

import openstack
import openstack.connection
import requests
import yaml

from tests.e2e import splitcluster as sc
from tests.rabbit import URL as RABBIT
from tests.waiting import wait_for
from tinystack import config

UNDERLAY = "10.250.0"
NBD_PORT = 10809
# The balancer also fronts the metadata API: the network host's relay reaches it there ([metadata] upstream).
FRONTED = (*sc.FRONTED, "metadata")


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def answers(port: int) -> bool:
    """The balancer's ``/healthcheck`` on ``port`` answers 200 (an API process behind it is up)."""
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthcheck", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=check)


class GuestCluster:
    """The processes and namespaces of one split cloud with ``nodes`` node machines; the first is the volume node."""

    def __init__(self, base: Path, db_url: str, nodes: int = 3) -> None:
        self.base, self.db_url = base, db_url
        tag = uuid.uuid4().hex[:6]
        self.exchange = f"tinystack-sg-{tag}"
        self.nodes = [f"sg{tag}n{i}" for i in range(1, nodes + 1)]
        self.underlay_netns, self.external_netns = f"tsul-sg{tag}", f"tsx-sg{tag}"
        self.ips = {h: f"{UNDERLAY}.{i}" for i, h in enumerate(self.nodes, start=1)}
        self.procs: dict[str, sc.Proc] = {}
        self.front = {s: sc.free_port() for s in FRONTED}
        self.backends = {name: {s: sc.free_port() for s in FRONTED} for name in ("api1", "api2")}
        self.instances = base / "instances"
        self.ini = self.write_config()
        self.namespaces: set[str] = set()  # the dataplane's (qdhcp-, qrouter-) found before the cleanup

    def write_config(self) -> Path:
        """The one file every process reads; what differs per process comes from its environment."""
        ports = "".join(f"{p} = 0\n" for p in config.DEFAULTS["ports"])
        volume_node = self.nodes[0]
        ini = self.base / "tinystack.conf"
        ini.write_text(
            f"[DEFAULT]\nbind = 127.0.0.1\n[database]\nconnection = {self.db_url}\n"
            f"[bus]\ntransport_url = {RABBIT}\nexchange = {self.exchange}\n[ports]\n{ports}"
            f"[fernet_tokens]\nkey_repository = {self.base / 'fernet-keys'}\n[identity]\npassword_hash_rounds = 4\n"
            # Heartbeats every 2 s and a node down after 20 s without one: the kill is seen in seconds.
            f"[compute]\ndriver = qemu\ninstances_path = {self.instances}\nheartbeat_interval = 2\n"
            "service_down_time = 20\n"
            f"[network]\ndriver = linux\nexternal_netns = {self.external_netns}\n"
            f"underlay_netns = {self.underlay_netns}\nunderlay_dev = ul0\n"
            f"[volume]\nvolume_host = {volume_node}\nnbd_host = {self.ips[volume_node]}\nnbd_port = {NBD_PORT}\n"
            f"nbd_netns = tsnode-{volume_node}\nresync_interval = 5\n"
            # One image store for every API process and the conductor (NFS in docs/deployment.md).
            f"[image]\nstore_dirs = file={self.base / 'images' / 'file'}\n"
            # One metadata socket and secret for the cloud: every process publishes the same upstream to the nodes'
            # metadata proxies, which sign with the secret the API checks (one filesystem here; see
            # docs/deployment.md for separate machines). The nodes' [metadata] upstream (node_env) puts the network
            # host's relay in front of the balancer instead, as on a network host with no API process.
            f"[metadata]\nsocket = {self.base / 'metadata.sock'}\nsecret_file = {self.base / 'metadata-secret'}\n"
            f"[guest]\nauto_build = true\ncache_dir = {sc.GUEST_CACHE}\n[desired]\nsync_interval = 10\n"
            "[metrics]\nport = 0\n"
            # The agents run in the host's namespace here (their dataplane is in the node namespaces): each node's
            # console bridge on a loopback port of its own, signed with the cluster's key.
            f"[console]\nnode_secret = {sc.SECRET}\nnode_listen = 127.0.0.1:0\n"
            "[object]\naccount_port = 0\ncontainer_port = 0\nobject_port = 0\npart_power = 6\n")
        return ini

    def node_env(self, host: str) -> dict[str, str]:
        """What a node machine's systemd unit would set (docs/deployment.md)."""
        ip = self.ips[host]
        return {"TINYSTACK_NETWORK_UNDERLAY_IP": f"{ip}/24",
                "TINYSTACK_NETWORK_VXLAN_PEERS": ",".join(v for h, v in self.ips.items() if h != host),
                "TINYSTACK_COMPUTE_LIVE_MIGRATION_INBOUND_ADDR": ip,
                "TINYSTACK_METADATA_UPSTREAM": self.url("metadata")}

    def start(self) -> None:
        self.instances.mkdir()
        for ns in (self.underlay_netns, self.external_netns):
            run("ip", "netns", "add", ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
        run("ip", "-n", self.underlay_netns, "link", "add", "ulbr", "type", "bridge", "forward_delay", "0",
            "stp_state", "0")
        run("ip", "-n", self.underlay_netns, "link", "set", "ulbr", "up")
        self.start_haproxy()
        a = self.procs["api1"] = sc.start("api", "api1", self.base, self.ini,
                                          sc.api_env(self.backends["api1"], self.front))
        self.procs["api2"] = sc.start("api", "api2", self.base, self.ini, sc.api_env(self.backends["api2"], self.front),
                                      seed=self.base / a.name)
        wait_for(lambda: all(answers(self.front["identity"]) for _ in range(4)), 60, "HAProxy to answer",
                 interval=0.5)
        self.procs["cond1"] = sc.start("conductor", "cond1", self.base, self.ini)

    def start_haproxy(self) -> None:
        """HAProxy first, before any process binds ports of its own: ports picked free may be taken by the time
        it binds them, so it is started again on others if it could not."""
        for _ in range(5):
            proc = sc.start_haproxy(self.base, sc.haproxy_cfg(self.front, self.backends))
            if wait_for(lambda h=proc: h.proc.poll() is not None or all(listening(p) for p in self.front.values()),
                        30, "HAProxy to listen or exit", interval=0.1) and proc.proc.poll() is None:
                self.procs["haproxy"] = proc
                return
            self.front = {s: sc.free_port() for s in FRONTED}
            self.backends = {name: {s: sc.free_port() for s in FRONTED} for name in ("api1", "api2")}
        raise AssertionError(f"HAProxy did not start: {(self.base / 'haproxy.log').read_text()[-2000:]}")

    def start_agent(self, host: str, **env: str) -> sc.Proc:
        return self.start_agents([host], **env)[0]

    def start_agents(self, hosts: list[str], **env: str) -> list[sc.Proc]:
        """The nodes' agents started side by side; returns once each says it is ready."""
        for host in hosts:
            self.procs[host] = sc.launch("agent", host, self.base, self.ini, {**self.node_env(host), **env},
                                         seed=self.base / "api1")
        return [self.procs[host].ready("agent", 180) for host in hosts]

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.front[service]}"

    def conn(self) -> openstack.connection.Connection:
        auth = yaml.safe_load((self.base / "api1" / "clouds.yaml").read_text())["clouds"]["admin"]["auth"]
        return openstack.connect(auth_url=self.url("identity") + "/v3", region_name="RegionOne", auth={
            "username": auth["username"], "password": auth["password"], "project_name": "admin",
            "user_domain_id": "default", "project_domain_id": "default"})

    def remember_namespaces(self, network_ids: list[str], router_ids: list[str]) -> None:
        """The dataplane namespaces of this cloud, removed at the end if an agent could not remove them."""
        self.namespaces |= {f"qdhcp-{n}" for n in network_ids} | {f"qrouter-{r}" for r in router_ids}

    def stop(self) -> None:
        """Agents first (SIGTERM: they remove their node namespaces), then the rest; then whatever a killed agent
        left: processes in this cloud's namespaces, the namespaces, the broker's queues."""
        for group in (self.nodes, ["cond1", "haproxy", "api2", "api1"]):
            with contextlib.suppress(Exception):
                sc.stop_all([self.procs[name] for name in group if name in self.procs])
        ours = [*(f"tsnode-{h}" for h in self.nodes), *sorted(self.namespaces), self.underlay_netns,
                self.external_netns]
        existing = set(run("ip", "netns", "list", check=False).stdout.split())
        for ns in ours:
            if ns not in existing:
                continue
            for pid in run("ip", "netns", "pids", ns, check=False).stdout.split():
                run("kill", "-9", pid, check=False)
            run("ip", "netns", "delete", ns, check=False)
        with contextlib.suppress(Exception):
            sc.remove_queues(self.exchange)
