"""The controller against a cloud of its own: fake agent heartbeats, resyncs and status reports on the
bus, and the desired-state documents it publishes (docs/contracts.md)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.livecloud import LiveCloud
from tinystack.core.auth import RequestContext

pytestmark = pytest.mark.api


class Recorder:
    def __init__(self, live: LiveCloud, host: str) -> None:
        self.live, self.host, self.messages = live, host, []  # type: list[dict[str, Any]]
        bus = live.cloud.runtime.bus  # type: ignore[union-attr]

        async def record(message: dict[str, Any]) -> None:
            self.messages.append(message)

        async def sub() -> None:
            bus.subscribe(f"agent.network.{host}", record)

        live.call(sub())

    def publish(self, topic: str, message: dict[str, Any]) -> None:
        bus = self.live.cloud.runtime.bus  # type: ignore[union-attr]
        self.live.call(bus.publish(topic, message))
        self.settle()

    def settle(self) -> None:
        rt = self.live.cloud.runtime
        assert rt is not None

        async def wait() -> None:
            # A message sets off a chain (a report → the controller → its documents on the bus → this recorder):
            # each round waits for everything on the bus to be handled, then for the controller to have
            # published all it was told of; three rounds cover the longest chain, no timer is involved.
            for _ in range(3):
                await rt.bus.drain()
                await rt.services["network"].controller.settled()

        self.live.call(wait())

    def latest(self, kind: str, ident: str) -> dict[str, Any] | None:
        found = [m for m in self.messages if m.get("type") == kind and m.get("id") == ident]
        return found[-1] if found else None


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCloud]:
    c = LiveCloud(Path(tmp_path_factory.mktemp("netctl")))
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def agent(cloud: LiveCloud) -> Recorder:
    host = f"tsctl-{uuid.uuid4().hex[:6]}"
    rec = Recorder(cloud, host)
    admin = cloud.conn("admin")
    admin.network.networks()  # bootstrap done
    # The network host stays where it is while its agent lives: disabling the real node's L3 agent lets the
    # recorder's heartbeat take DHCP and routers over.
    real = next(a for a in admin.network.agents(host=cloud.host) if a.agent_type == "L3 agent")
    admin.network.update_agent(real, is_admin_state_up=False)
    rec.publish("heartbeat", {"agent": "network", "host": host, "time": time.time(),
                              "binary": "tinystack-network-agent"})
    return rec


def test_heartbeat_feeds_agents_api(cloud: LiveCloud, agent: Recorder) -> None:
    agents = list(cloud.conn("admin").network.agents(host=agent.host))
    assert {a.agent_type for a in agents} >= {"L3 agent", "DHCP agent"}
    assert all(a.is_alive for a in agents)
    a = cloud.conn("admin").network.update_agent(agents[0], is_admin_state_up=False)
    assert a.is_admin_state_up is False


def test_resync_sends_everything_and_a_sync(cloud: LiveCloud, agent: Recorder) -> None:
    agent.messages.clear()
    agent.publish("resync.network", {"host": agent.host})
    sync = agent.messages[-1]
    assert sync["op"] == "sync" and set(sync["types"]) == {"network", "dhcp", "port", "router"}
    puts = {(m["type"], m["id"]) for m in agent.messages if m["op"] == "put"}
    admin = cloud.conn("admin")
    private = admin.network.find_network("private")
    router = admin.network.find_router("router1")
    assert ("network", private.id) in puts and ("dhcp", private.id) in puts and ("router", router.id) in puts
    assert set(sync["ids"]["router"]) == {i for t, i in puts if t == "router"}
    rdoc = agent.latest("router", router.id)
    assert rdoc is not None
    spec = rdoc["spec"]
    assert spec["gateway"]["cidr"] == "172.24.4.0/24" and spec["gateway"]["enable_snat"] is True
    assert [i["ip"] for i in spec["interfaces"]] == ["10.0.0.1"]
    public = agent.latest("network", admin.network.find_network("public").id)
    assert public is not None and public["spec"]["external_gateway_ip"] == "172.24.4.1"
    assert public["spec"]["router_external"] is True


def test_port_docs_remote_groups_and_status(cloud: LiveCloud, agent: Recorder) -> None:
    svc = cloud.cloud.runtime.services["network"]  # type: ignore[union-attr]
    admin = cloud.conn("admin")
    demo_project = cloud.conn("demo").current_project_id
    ctx = RequestContext(user_id="nova", project_id=admin.current_project_id, roles=("admin",))
    private = admin.network.find_network("private")
    bind = {"binding:host_id": agent.host, "device_owner": "compute:nova"}
    p1 = svc.create_port(ctx, {"port": {"network_id": private.id, "project_id": demo_project, **bind}})
    p2 = svc.create_port(ctx, {"port": {"network_id": private.id, "project_id": demo_project, **bind}})
    agent.settle()
    doc = agent.latest("port", p1["id"])
    assert doc is not None and doc["op"] == "put"
    spec = doc["spec"]
    assert set(spec) == {"id", "network_id", "mac_address", "fixed_ips", "device_owner", "device_id",
                         "port_security_enabled", "allowed_address_pairs", "security_group_rules"}
    ip1, ip2 = p1["fixed_ips"][0]["ip_address"], p2["fixed_ips"][0]["ip_address"]
    ingress = {r["remote_ip_prefix"] for r in spec["security_group_rules"]
               if r["direction"] == "ingress" and r["ethertype"] == "IPv4"}
    assert ingress == {f"{ip1}/32", f"{ip2}/32"}  # default group: ingress from members, expanded per IP
    dhcp = agent.latest("dhcp", private.id)
    assert dhcp is not None and {h["ip"] for h in dhcp["spec"]["hosts"]} >= {ip1, ip2}
    # a member leaves: the other port's document changes, with a new generation
    gen = agent.latest("port", p2["id"])["generation"]  # type: ignore[index]
    svc.delete_port(ctx, p1["id"])
    agent.settle()
    assert agent.latest("port", p1["id"])["op"] == "delete"  # type: ignore[index]
    doc2 = agent.latest("port", p2["id"])
    assert doc2 is not None and doc2["generation"] == gen + 1
    assert f"{ip1}/32" not in {r["remote_ip_prefix"] for r in doc2["spec"]["security_group_rules"]}
    # status reports: stale ACTIVE ignored, current ACTIVE applied, ERROR applied
    agent.publish("status.network", {"type": "port", "id": p2["id"], "host": agent.host,
                                     "observed_generation": gen, "status": {"status": "ACTIVE"}})
    assert svc.port_statuses([p2["id"]]) == {p2["id"]: "DOWN"}
    agent.publish("status.network", {"type": "port", "id": p2["id"], "host": agent.host,
                                     "observed_generation": gen + 1, "status": {"status": "ACTIVE"}})
    assert svc.show_port(ctx, p2["id"])["status"] == "ACTIVE"
    agent.publish("status.network", {"type": "port", "id": p2["id"], "host": agent.host,
                                     "observed_generation": gen + 1, "status": {"status": "ERROR", "reason": "x"}})
    assert svc.port_statuses([p2["id"]])[p2["id"]] == "ERROR"
    # unbinding sends a delete and the port goes DOWN
    svc.update_port(ctx, p2["id"], {"port": {"binding:host_id": ""}})
    agent.settle()
    assert agent.latest("port", p2["id"])["op"] == "delete"  # type: ignore[index]
    assert svc.port_statuses([p2["id"]])[p2["id"]] == "DOWN"
    svc.delete_port(ctx, p2["id"])


def test_floating_ip_reaches_router_doc_and_status(cloud: LiveCloud, agent: Recorder) -> None:
    demo = cloud.conn("demo")
    svc = cloud.cloud.runtime.services["network"]  # type: ignore[union-attr]
    router = demo.network.find_router("router1")
    port = demo.network.create_port(network_id=demo.network.find_network("private").id)
    fip = demo.network.create_ip(floating_network_id=demo.network.find_network("public").id, port_id=port.id)
    agent.settle()
    doc = agent.latest("router", router.id)
    assert doc is not None
    assert {"id": fip.id, "floating_ip": fip.floating_ip_address,
            "fixed_ip": port.fixed_ips[0]["ip_address"]} in doc["spec"]["floating_ips"]
    agent.publish("status.network", {"type": "router", "id": router.id, "host": agent.host,
                                     "observed_generation": doc["generation"], "status": {"status": "ACTIVE"}})
    assert demo.network.get_ip(fip.id).status == "ACTIVE"
    demo.network.delete_ip(fip)
    demo.network.delete_port(port)
    agent.settle()
    assert fip.id not in {f["id"] for f in agent.latest("router", router.id)["spec"]["floating_ips"]}  # type: ignore[index]
    assert svc is not None
