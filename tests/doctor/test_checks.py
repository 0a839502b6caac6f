"""The doctor's rules with fakes: liveness, clocks and versions, stuck resources, orphans, disk, KVM, schemas,
and the report's shape and exit status."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tinystack import __version__
from tinystack.core.bus import InProcessBus
from tinystack.core.db import CORE_MIGRATIONS, Database
from tinystack.doctor import database, fleet, node, orphans, run, stuck
from tinystack.doctor.findings import ERROR, INFO, OK, WARNING, Finding, ago

pytestmark = pytest.mark.unit

DOWN = {"nova-compute": 60.0, "nova-conductor": 60.0, "*": 75.0}


def levels(found: list[Finding]) -> list[tuple[str, str]]:
    return [(f.level, f.subject) for f in found]


def test_liveness() -> None:
    now = time.time()
    rows = [fleet.Beat("nova-compute", "up1", now - 5), fleet.Beat("nova-conductor", "api1", now - 100),
            fleet.Beat("nova-compute", "down1", now - 300),
            fleet.Beat("Open vSwitch agent", "down1", now - 70), fleet.Beat("nova-compute", "off", now - 999, enabled=False),
            fleet.Beat("nova-compute", "forced", now, forced_down=True), fleet.Beat("nova-compute", "future", now + 60)]
    found = fleet.liveness(rows, DOWN, now, max_skew=5)
    by_subject = {f.subject: f for f in found}
    down = by_subject["nova-compute@down1"]
    assert down.level == ERROR and "is down: last heartbeat" in down.what and "5 min 0 s ago" in down.what
    assert "tinystack agent" in down.todo
    api = by_subject["nova-conductor@api1"]
    assert api.level == ERROR and "API process on api1 (`tinystack up`)" in api.todo
    # The network agent's own down time (75 s) applies, not compute's.
    assert "Open vSwitch agent@down1" not in by_subject
    assert by_subject["nova-compute@off"].level == INFO
    assert by_subject["nova-compute@forced"].level == WARNING
    assert by_subject["nova-compute@future"].check == fleet.CHECK_SKEW and "ahead" in by_subject["nova-compute@future"].what
    assert any(f.level == OK and "2 services and agents up" in f.what for f in found)
    assert fleet.liveness([], DOWN, now, 5)[0].level == WARNING


def test_clock_and_version_skew_from_heartbeats_on_the_bus() -> None:
    async def scenario() -> fleet.Heartbeats:
        bus = InProcessBus()
        beats = fleet.Heartbeats()
        listening = asyncio.create_task(beats.listen(bus, 0.2))
        await asyncio.sleep(0)
        await bus.publish("heartbeat", {"agent": "compute", "host": "slow", "time": time.time() - 30})
        await bus.publish("heartbeat", {"agent": "network", "host": "fine", "time": time.time()})
        await listening
        await bus.publish("heartbeat", {"agent": "compute", "host": "late", "time": time.time()})
        await bus.drain()
        return beats

    beats = asyncio.run(scenario())
    assert set(beats.heard) == {("compute", "slow"), ("network", "fine")}  # nothing counted after listening
    assert beats.heard[("network", "fine")][1] == __version__
    found = fleet.skew(beats.heard, max_skew=5)
    assert levels(found) == [(ERROR, "compute@slow")]
    assert "behind" in found[0].what and "synchronise" in found[0].todo
    found = fleet.skew({("compute", "old"): (0.1, "0.0.9")}, max_skew=5)
    assert levels(found) == [(WARNING, "compute@old")] and "0.0.9" in found[0].what
    assert fleet.skew({("compute", "a"): (0.1, __version__)}, 5)[0].level == OK


def test_stuck_findings() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0)
    found = stuck.findings([stuck.Stuck("server", "s1", "building/spawning", "h1", now - timedelta(minutes=15)),
                            stuck.Stuck("port", "p1", "BUILD", None, now - timedelta(hours=2))], now, 600)
    assert levels(found) == [(WARNING, "s1"), (WARNING, "p1")]
    assert found[0].what == "server s1 has been building/spawning since 2026-01-01 11:45:00 UTC (15 min 0 s ago) on h1"
    assert "compute agent on h1" in found[0].todo
    assert stuck.findings([], now, 600)[0].level == OK


def test_orphans_compare() -> None:
    port = "0123456789abcdef0123456789abcdef"
    known = orphans.Known(ports={port}, networks={"n1"}, routers={"r1"}, instances={"i1"}, volumes={"v1"})
    seen = orphans.Seen("h1", "tsnode-h1", taps=[f"tap{port[:11]}", "tapdeadbeef000"],
                        namespaces=["qdhcp-n1", "qdhcp-n2", "qrouter-r1", "qrouter-r9"], qemu={10: "i1", 11: "i2"},
                        instance_dirs=["i1", "i3"], volume_files=[Path("/v/volume-v1"), Path("/v/snapshot-v2")])
    found = orphans.compare(seen, known)
    assert levels(found) == [(WARNING, "tapdeadbeef000"), (WARNING, "qdhcp-n2"), (WARNING, "qrouter-r9"),
                             (WARNING, "i2"), (WARNING, "i3"), (WARNING, "/v/snapshot-v2")]
    assert "ip -n tsnode-h1 link delete tapdeadbeef000" in found[0].todo
    assert "kill 11" in found[3].todo
    clean = orphans.compare(orphans.Seen("h1", "tsnode-h1", skipped=["no root"]), known)
    assert levels(clean) == [(INFO, "h1"), (OK, "h1")]


def test_orphans_only_of_this_nodes_network_agent(tmp_path: Path) -> None:
    """Namespaces this node's network agent made are checked against the database; the machine's others (another
    cloud's, another node's) are counted, never named, so a healthy node on a shared machine is healthy."""
    state = tmp_path / "network"
    for sub, ident in (("dhcp", "n1"), ("dhcp", "n-gone"), ("routers", "r1")):
        (state / sub / ident).mkdir(parents=True)
    (state / "dhcp" / "stray-file").write_text("")  # only directories are records
    owned = orphans.owned_namespaces(state)
    assert owned == {"qdhcp-n1", "qdhcp-n-gone", "qrouter-r1"}
    assert orphans.owned_namespaces(tmp_path / "no-agent-here") == set()
    machine = ["qdhcp-n1", "qdhcp-n-gone", "qrouter-r1", "qdhcp-other-cloud", "qrouter-other-node", "tsnode-x"]
    known = orphans.Known(networks={"n1"}, routers={"r1"})
    seen = asyncio.run(orphans.gather("h1", "tsnode-h1", tmp_path / "instances", None, owned, machine))
    assert sorted(seen.namespaces) == ["qdhcp-n-gone", "qdhcp-n1", "qrouter-r1"] and seen.foreign_namespaces == 2
    found = orphans.compare(seen, known)
    assert levels(found) == [(WARNING, "qdhcp-n-gone"), (INFO, "h1")]
    assert "2 qdhcp-/qrouter- namespace(s)" in found[1].what
    # Without this cloud's agent records (a compute-only node, or another cloud's agent) nothing is an orphan.
    healthy = orphans.compare(asyncio.run(orphans.gather("h2", "tsnode-h2", tmp_path / "instances", None, set(),
                                                         machine)), known)
    assert [f.level for f in healthy] == [INFO, OK] and run.healthy(healthy)
    # No real dataplane on this node: the namespaces are not looked at at all.
    none = asyncio.run(orphans.gather("h3", "tsnode-h3", tmp_path / "instances", None, None, machine))
    assert none.namespaces == [] and none.foreign_namespaces == 0


def test_link_names_and_qemu_processes(tmp_path: Path) -> None:
    text = ("1: lo: <LOOPBACK,UP> mtu 65536 qdisc noqueue\n"
            "5: tap0123abcd-ef@if6: <BROADCAST> mtu 1500\n")
    assert orphans._link_names(text) == ["lo", "tap0123abcd-ef"]
    proc = tmp_path / "proc"
    ours = tmp_path / "instances"
    for pid, pidfile, uuid in ((101, ours / "u1" / "qemu.pid", "u1"), (102, tmp_path / "other" / "u2" / "qemu.pid", "u2")):
        (proc / str(pid)).mkdir(parents=True)
        argv = ["qemu-system-x86_64", "-uuid", uuid, "-daemonize", "-pidfile", str(pidfile)]
        (proc / str(pid) / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    (proc / "self").mkdir()
    assert orphans.qemu_processes(ours, proc) == {101: "u1"}


def test_disk(tmp_path: Path) -> None:
    found = node.disk([tmp_path, tmp_path / "missing" / "deeper"], min_free_mb=1)
    assert [f.level for f in found] == [OK]  # one file system, one finding
    found = node.disk([tmp_path], min_free_mb=10**12)
    assert found[0].level == ERROR and "min_free_mb" in found[0].what


def test_kvm_verdicts(tmp_path: Path) -> None:
    verdict = tmp_path / "kvm-verdict.json"
    device = tmp_path / "kvm"
    assert node.kvm(verdict, "auto", "fake").level == INFO
    assert "TCG" in node.kvm(verdict, "auto", "qemu", device=str(device)).what
    assert node.kvm(verdict, "on", "qemu", device=str(device)).level == ERROR
    device.touch()
    assert "not decided" in node.kvm(verdict, "auto", "qemu", device=str(device)).what
    verdict.write_text(json.dumps({"host": "k", "kernels": {"abc": {"usable": True, "reason": "probe ok", "at": 1}}}))
    assert node.kvm(verdict, "auto", "qemu", device=str(device)).what == "guests run under KVM (probe ok)"
    verdict.write_text(json.dumps({"host": "k", "kernels": {}, "broken": {"reason": "internal-error"}}))
    f = node.kvm(verdict, "auto", "qemu", device=str(device))
    assert f.level == INFO and "TCG" in f.what and "internal-error" in f.what


def test_schema_heads(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        behind = database.heads(db.engine, [("core", CORE_MIGRATIONS)])
        assert behind[0].level == ERROR and "db-sync" in behind[0].todo
        db.migrate("core", CORE_MIGRATIONS)
        assert database.heads(db.engine, [("core", CORE_MIGRATIONS)])[0].level == OK
    finally:
        db.dispose()


def test_connect_never_creates_a_database(tmp_path: Path) -> None:
    from tinystack import config

    cfg = config.load(None, environ={}, overrides={"state_dir": str(tmp_path)})
    db, finding = database.connect(cfg)
    assert db is None and finding.level == ERROR and not (tmp_path / "tinystack.db").exists()
    redacted = database._redact("postgresql+psycopg://tiny:secret@db:5432/tiny")
    assert "secret" not in redacted and redacted.startswith("postgresql+psycopg://tiny:***@db")


def test_report() -> None:
    fine = [Finding("disk", OK, "plenty"), Finding("kvm", INFO, "TCG")]
    assert run.healthy(fine)
    text = run.render_text(fine)
    assert text.splitlines()[0].startswith("tinystack doctor: healthy") and "plenty" not in text and "TCG" in text
    assert "plenty" in run.render_text(fine, verbose=True)
    bad = [*fine, Finding("services", ERROR, "nova-compute on h is down", "start it", "nova-compute@h")]
    assert not run.healthy(bad)
    text = run.render_text(bad)
    assert "1 problem(s)" in text and "-> start it" in text
    doc = json.loads(run.render_json(bad))
    assert doc["healthy"] is False and doc["findings"][2]["subject"] == "nova-compute@h"
    assert ago(3725) == "1 h 2 min ago"
