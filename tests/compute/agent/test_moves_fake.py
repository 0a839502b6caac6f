"""Two compute agents on one bus whose fake drivers share one storage (as two nodes share an instances path):
cold moves hand the guest over, live migrations go through listening → send → completed, and failures leave
the guest running where it was."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tests.compute.agent.test_agent_fake import IID, instance_spec
from tests.waiting import until
from tinystack.compute.agent import ComputeAgent
from tinystack.compute.drivers.base import PAUSED, RUNNING, SHUTDOWN, DriverError
from tinystack.compute.drivers.fake import FakeDriver, FakeStorage
from tinystack.core.bus import InProcessBus

A, B = "node-a", "node-b"


class Pair:
    def __init__(self, tmp: Path) -> None:
        self.bus = InProcessBus()
        self.storage = FakeStorage()
        self.drivers = {h: FakeDriver(host=h, storage=self.storage) for h in (A, B)}
        self.agents = {h: ComputeAgent(self.bus, h, self.drivers[h], tmp / h, power_off_timeout=0.1,
                                       heartbeat_interval=3600, resync_interval=3600,
                                       migration_address=f"10.0.0.{i + 1}", migration_timeout=5)
                       for i, h in enumerate((A, B))}
        self.status: list[dict[str, Any]] = []

        async def collect(msg: dict[str, Any]) -> None:
            if msg.get("type") == "instance":
                self.status.append(msg)
        self.bus.subscribe("status.compute", collect)

    async def settle(self) -> None:
        for _ in range(5):
            await self.bus.drain()
            for agent in self.agents.values():
                await agent.wait_idle()
        await self.bus.drain()

    async def send(self, host: str, msg: dict[str, Any]) -> None:
        await self.bus.publish(f"agent.compute.{host}", {"type": "instance", "id": IID, **copy.deepcopy(msg)})
        await self.settle()

    async def put(self, host: str, generation: int, **changes: Any) -> None:
        await self.send(host, {"op": "put", "generation": generation, "spec": instance_spec(**changes)})

    def holder(self) -> str | None:
        guest = self.storage.guests.get(IID)
        return guest.host if guest is not None else None

    def reports(self, host: str) -> list[dict[str, Any]]:
        return [m for m in self.status if m["host"] == host]

    def started_on(self, host: str, generation: int) -> bool:
        """``host`` holds the guest, runs it and reported it active for ``generation``: a cold move's end."""
        guest, last = self.drivers[host].guests.get(IID), self.reports(host)[-1:]
        return (self.holder() == host and guest is not None and guest.power_state == RUNNING and bool(last)
                and last[0]["observed_generation"] == generation and last[0]["status"]["vm_state"] == "active")

    def migration_reports(self) -> list[tuple[str, str]]:
        return [(m["host"], m["status"]["migration"]["state"]) for m in self.status if "migration" in m["status"]]


def run(tmp_path: Path, scenario: Callable[[Pair], Awaitable[None]]) -> None:
    async def main() -> None:
        pair = Pair(tmp_path)
        for agent in pair.agents.values():
            await agent.start()
        try:
            await scenario(pair)
        finally:
            for agent in pair.agents.values():
                await agent.stop(cleanup=False)
            await pair.bus.close()
    asyncio.run(main())


def cold(src: str, dest: str, **extra: Any) -> dict[str, Any]:
    return {"id": "7", "kind": "cold", "source_host": src, "dest_host": dest, **extra}


def live(src: str, dest: str, **extra: Any) -> dict[str, Any]:
    return {"id": "9", "kind": "live", "source_host": src, "dest_host": dest, **extra}


def test_cold_move_waits_for_the_handover_then_starts_on_the_destination(tmp_path: Path) -> None:
    async def scenario(p: Pair) -> None:
        await p.put(A, 1)
        assert p.holder() == A and p.drivers[A].guests[IID].power_state == RUNNING
        # The destination's document comes first: it waits, since A still holds the files.
        await p.put(B, 2, migration=cold(A, B))
        assert p.holder() == A and not p.reports(B)
        await p.send(A, {"op": "delete", "generation": 2, "to_host": B})
        # The destination looks again after half a second; wait for it to have started the guest.
        await until(lambda: p.started_on(B, 2), 5, "the guest to start on B")
        await p.settle()
        assert p.holder() == B and p.drivers[B].guests[IID].power_state == RUNNING
        assert IID not in p.drivers[A].guests
        assert p.drivers[A].calls[-2:] == [("power_off", IID), ("release", IID)]
        last = p.reports(B)[-1]
        assert last["observed_generation"] == 2 and last["status"]["vm_state"] == "active"
        assert not [m for m in p.reports(A) if m["observed_generation"] == 2]  # a hand-over is not a delete
        # Revert: the same dance the other way.
        await p.put(A, 3, migration=cold(B, A, revert=True))
        await p.send(B, {"op": "delete", "generation": 3, "to_host": A})
        await until(lambda: p.started_on(A, 3), 5, "the guest to start back on A")
        await p.settle()
        assert p.holder() == A and p.drivers[A].guests[IID].power_state == RUNNING
        assert p.reports(A)[-1]["status"]["vm_state"] == "active"
    run(tmp_path, scenario)


def test_evacuation_takes_the_guest_from_a_dead_node(tmp_path: Path) -> None:
    async def scenario(p: Pair) -> None:
        await p.put(A, 1)
        await p.agents[A].stop(cleanup=False)  # node A's agent is gone; it never hands anything over
        await p.put(B, 2, migration={"id": "8", "kind": "evacuation", "source_host": A, "dest_host": B},
                    rebuild={"seq": 1})
        assert p.holder() == B and p.drivers[B].guests[IID].power_state == RUNNING
        assert p.reports(B)[-1]["status"]["vm_state"] == "active"
    run(tmp_path, scenario)


def test_live_migration_moves_the_running_guest(tmp_path: Path) -> None:
    async def scenario(p: Pair) -> None:
        await p.put(A, 1, power="paused")
        guest = p.drivers[A].guests[IID]
        await p.put(B, 2, power="paused", migration=live(A, B))
        listening = p.reports(B)[-1]["status"]["migration"]
        assert listening["state"] == "listening" and listening["uri"].startswith("fake://10.0.0.2/")
        assert p.holder() == A
        await p.put(A, 3, power="paused", migration=live(A, B, uri=listening["uri"]))
        assert p.migration_reports() == [(B, "listening"), (A, "completed")]
        assert p.holder() == B and p.drivers[B].guests[IID] is guest and guest.power_state == PAUSED
        assert guest.boots == 1  # the same guest, never rebooted
        # The conductor then sends the destination the document without the migration: nothing to do.
        p.drivers[B].calls.clear()
        await p.put(B, 4, power="paused")
        assert p.drivers[B].calls == [] and p.reports(B)[-1]["status"]["vm_state"] == "paused"
        # The source forgot it: a sync that does not name it changes nothing on the destination.
        await p.send(A, {"op": "sync", "types": ["instance"], "ids": {"instance": []}})
        assert p.holder() == B
    run(tmp_path, scenario)


def test_destination_listens_once_whatever_documents_come_meanwhile(tmp_path: Path) -> None:
    """A newer document for the destination while it listens (another API process publishing the migration with
    its URI): the guest does not look arrived yet (the source still holds the files), but the destination must not
    prepare a second time (QEMU refuses, and the failure would cut the transfer short); it says it listens."""
    async def scenario(p: Pair) -> None:
        await p.put(A, 1, power="paused")
        await p.put(B, 2, power="paused", migration=live(A, B))
        uri = p.reports(B)[-1]["status"]["migration"]["uri"]
        await p.put(B, 3, power="paused", migration=live(A, B, uri=uri))
        assert p.drivers[B].calls.count(("prepare_incoming", IID)) == 1
        assert p.migration_reports() == [(B, "listening"), (B, "listening")]
        assert p.reports(B)[-1]["status"]["migration"]["uri"] == uri
        await p.put(A, 3, power="paused", migration=live(A, B, uri=uri))
        assert p.migration_reports()[-1] == (A, "completed") and p.holder() == B
    run(tmp_path, scenario)


def test_destination_that_cannot_listen_reports_error(tmp_path: Path) -> None:
    async def scenario(p: Pair) -> None:
        await p.put(A, 1)
        p.drivers[B].fail_on["prepare_incoming"] = DriverError("QEMU failed to start: no taps")
        await p.put(B, 2, migration=live(A, B))
        assert p.migration_reports() == [(B, "error")]
        assert "no taps" in p.reports(B)[-1]["status"]["migration"]["message"]
        assert p.holder() == A and p.drivers[A].guests[IID].power_state == RUNNING
    run(tmp_path, scenario)


def test_failed_send_leaves_the_guest_running_on_the_source(tmp_path: Path) -> None:
    async def scenario(p: Pair) -> None:
        await p.put(A, 1)
        # A URI nobody listens on: the "destination never listens" case seen from the source.
        await p.put(A, 2, migration=live(A, B, uri="fake://10.0.0.2/node-b/nobody"))
        assert p.migration_reports() == [(A, "error")]
        assert "refused" in p.reports(A)[-1]["status"]["migration"]["message"]
        assert p.holder() == A and p.drivers[A].guests[IID].power_state == RUNNING
        # The same migration is never tried twice, even when its document comes again.
        await p.put(A, 2, migration=live(A, B, uri="fake://10.0.0.2/node-b/nobody"))
        assert [c for c in p.drivers[A].calls if c[0] == "migrate_out"] == [("migrate_out", IID)]
        # The conductor's next document (migration dropped) finds it running; the destination forgets its QEMU.
        await p.put(A, 3)
        assert p.reports(A)[-1]["status"]["vm_state"] == "active"
        await p.send(B, {"op": "delete", "generation": 3})
        assert p.holder() == A and p.drivers[A].guests[IID].power_state == RUNNING
    run(tmp_path, scenario)


def test_destination_delete_never_removes_the_sources_files(tmp_path: Path) -> None:
    async def scenario(p: Pair) -> None:
        await p.put(A, 1)
        await p.put(B, 2, migration=live(A, B))
        await p.send(B, {"op": "delete", "generation": 3})
        assert p.holder() == A and p.storage.listening == {}
        assert p.drivers[A].guests[IID].power_state == RUNNING
        await p.put(A, 3, power="stopped")
        assert p.drivers[A].guests[IID].power_state == SHUTDOWN
    run(tmp_path, scenario)
