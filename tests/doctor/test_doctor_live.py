"""``tinystack doctor`` on a live cloud of its own: healthy says so; then, with the compute agent killed, a server
stuck in BUILD (its publish made to fail by fault injection) and an orphan tap in a node namespace this test
creates, it names each one. Needs root for the namespace (never the host's own interfaces)."""

from __future__ import annotations

import copy
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from tests.livecloud import LiveCloud, remove_netns
from tinystack.compute.agent import ComputeAgent
from tinystack.compute.models import Service
from tinystack.core import desired
from tinystack.doctor import run
from tinystack.doctor.findings import Finding

pytestmark = [pytest.mark.dataplane, pytest.mark.privileged]


@pytest.fixture()
def cloud(tmp_path: Path) -> Iterator[LiveCloud]:
    live = LiveCloud(tmp_path / "cloud", compute__heartbeat_interval="1")
    try:
        yield live
    finally:
        live.stop()


def doctor(live: LiveCloud, **settings: str) -> list[Finding]:
    cfg = copy.deepcopy(live.config)
    for key, value in settings.items():
        cfg.set("doctor", key, value)
    assert live.cloud.runtime is not None
    found: list[Finding] = live.call(run.diagnose(cfg, bus=live.cloud.runtime.bus, listen=2.5))
    return found


def test_healthy_then_each_problem_named(cloud: LiveCloud) -> None:
    found = doctor(cloud)
    assert run.healthy(found), run.render_text(found)
    text = run.render_text(found, verbose=True)
    assert "schemas at their migration head" in text and "services and agents up" in text
    assert "agents heard: same version" in text  # heartbeats heard on the bus, clocks compared

    # A server whose desired state never reaches its host: the publish dies between commit and bus, every time.
    def crash(service: str, key: str) -> None:
        if service == "compute":
            raise desired.SimulatedCrash(key)

    conn = cloud.conn("admin")
    image = conn.image.create_image(name="doctor-img", data=b"\0" * 4096, disk_format="raw", container_format="bare")
    node_netns = f"tsnode-{cloud.host}"
    desired.before_publish = crash
    try:
        server = conn.compute.create_server(name="stuck", image_id=image.id, flavor_id="1", networks="none")
        # The compute agent dies: its heartbeats stop, and its service row's last one is made older than
        # service_down_time (rather than waiting the 60 s).
        agent = cloud.agent(ComputeAgent, cloud.host)
        cloud.call(agent.stop(cleanup=False))
        assert cloud.cloud.node_agents is not None and cloud.cloud.runtime is not None
        cloud.cloud.node_agents.running.remove(agent)
        with cloud.cloud.runtime.db.session() as s:
            s.execute(update(Service).where(Service.host == cloud.host, Service.binary == "nova-compute")
                      .values(last_seen=time.time() - 300))
        # A tap nobody owns, in the node namespace (made here: the fake dataplane makes none).
        subprocess.run(["ip", "netns", "add", node_netns], check=True)
        subprocess.run(["ip", "netns", "exec", node_netns, "ip", "tuntap", "add", "dev", "tapdeadbeef-00", "mode", "tap"],
                       check=True)
        time.sleep(2.5)  # the server past stuck_after
        found = doctor(cloud, stuck_after="2")
        text = run.render_text(found)
        problems = {(f.check, f.subject): f for f in found if f.problem}
        assert not run.healthy(found)
        down = problems.get(("services", f"nova-compute@{cloud.host}"))
        assert down is not None and "is down" in down.what and down.todo, text
        stuck = problems.get(("stuck", server.id))
        assert stuck is not None and "building" in stuck.what, text
        tap = problems.get(("orphans", "tapdeadbeef-00"))
        assert tap is not None and node_netns in tap.what and "link delete" in tap.todo, text
        assert len(problems) == 3, text
    finally:
        desired.before_publish = None
        remove_netns(node_netns)
        conn.compute.delete_server(server.id, ignore_missing=True)
        conn.image.delete_image(image)
