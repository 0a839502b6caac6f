"""Identity writes fan out over the bus: every other API process reloads revocations and drops its cached
token validations; the writing process ignores its own announcement."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from tinystack.cloud import share_identity_changes
from tinystack.core.bus import InProcessBus


def test_a_write_reaches_every_other_process() -> None:
    async def scenario() -> list[int]:
        bus = InProcessBus()  # stands in for the broker that three API processes share
        reloads = [0, 0, 0]
        processes: list[Any] = []
        for i in range(3):
            def reload(i: int = i) -> None:
                reloads[i] += 1
            processes.append(SimpleNamespace(on_change=[], tokens=SimpleNamespace(load_revocations=reload)))
            share_identity_changes(processes[i], bus, asyncio.get_running_loop())
        for hook in processes[0].on_change:  # process 0 wrote (IdentityService.changed runs the hooks)
            await asyncio.to_thread(hook)
        deadline = asyncio.get_running_loop().time() + 10
        while sum(reloads) < 2 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        await bus.drain()
        return reloads

    assert asyncio.run(scenario()) == [0, 1, 1]
