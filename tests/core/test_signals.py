"""The SIGUSR2 state report names every waiting task and thread with where it waits; SIGTERM still stops."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading

import pytest

from tinystack.core import signals


async def _parked(event: asyncio.Event) -> None:
    await event.wait()


def test_report_names_tasks_and_threads_with_their_stacks() -> None:
    asyncio.run(_report_scenario())


async def _report_scenario() -> None:
    release = asyncio.Event()
    task = asyncio.create_task(_parked(release), name="parked-heartbeat")
    gate = threading.Event()
    thread = threading.Thread(target=gate.wait, name="parked-writer")
    thread.start()
    try:
        await asyncio.sleep(0)
        report = signals.state_report()
    finally:
        gate.set()
        release.set()
        thread.join()
        await task
    assert "--- task parked-heartbeat" in report
    assert "in _parked" in report  # the line the task waits on
    assert "locks.py" in report.split("--- task parked-heartbeat")[1].split("---")[0]  # and what it awaits inside
    assert "--- thread parked-writer" in report
    assert "gate.wait" in report or "in wait" in report


def test_sigusr2_logs_a_report_and_sigterm_stops(caplog: pytest.LogCaptureFixture) -> None:
    asyncio.run(_signal_scenario(caplog))


async def _signal_scenario(caplog: pytest.LogCaptureFixture) -> None:
    stop = asyncio.Event()
    signals.install(stop)
    loop = asyncio.get_running_loop()
    try:
        with caplog.at_level(logging.WARNING, logger=signals.__name__):
            os.kill(os.getpid(), signal.SIGUSR2)
            for _ in range(100):
                if caplog.records:
                    break
                await asyncio.sleep(0.01)
        assert caplog.records and "asyncio tasks" in caplog.records[0].getMessage()
        assert not stop.is_set()
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(stop.wait(), 5)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR2):
            loop.remove_signal_handler(sig)
