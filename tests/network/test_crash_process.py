"""A real process death between the commit and the publish loses nothing (design §7): ``tinystack up`` with
``TINYSTACK_CRASH_BEFORE_PUBLISH=network`` dies (exit 86) at the network controller's first publish, after it
committed a document's new generation; the next ``tinystack up`` on the same state publishes it.

Three runs of one cloud (fake drivers, SQLite, the in-process bus): the first sets up the DevStack networks and
stops; between runs the ``private`` network's MTU is changed in the database, so the second run's first pass
bumps that network's document and dies before publishing it; the third run must publish it."""

from __future__ import annotations

import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests import waiting
from tinystack import config
from tinystack.core.desired import CRASH_ENV, CRASH_EXIT

pytestmark = pytest.mark.api

ROOT = Path(__file__).resolve().parents[2]


def write_ini(base: Path) -> Path:
    ports = "".join(f"{p} = 0\n" for p in config.DEFAULTS["ports"])
    (base / "state").mkdir()
    ini = base / "cloud.ini"
    ini.write_text(f"[DEFAULT]\nhost = crash{uuid.uuid4().hex[:6]}\nstate_dir = {base / 'state'}\n"
                   f"bind = 127.0.0.1\n[ports]\n{ports}[identity]\npassword_hash_rounds = 4\n"
                   "[compute]\ndriver = fake\n[network]\ndriver = fake\nexternal_netns =\n[volume]\ndriver = fake\n"
                   "[guest]\nauto_build = false\n[desired]\nsync_interval = 1\n")
    return ini


def up(ini: Path, crash: bool) -> tuple[subprocess.Popen[str], queue.Queue[str]]:
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    env["PYTHONPATH"] = str(ROOT)
    if crash:
        env[CRASH_ENV] = "network"
    log = open(ini.parent / "stderr.log", "a")  # noqa: SIM115 - the child writes it until it exits
    proc = subprocess.Popen([sys.executable, "-m", "tinystack.cli", "--config", str(ini), "up"], env=env,
                            stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT)
    log.close()
    lines: queue.Queue[str] = queue.Queue()
    out = proc.stdout
    assert out is not None
    threading.Thread(target=lambda: [lines.put(line) for line in out], daemon=True).start()
    return proc, lines


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def wait_for(what: str, check: Callable[[], Any], timeout: float = 120) -> Any:
    return waiting.wait_for(check, timeout, what)


def query(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db, timeout=30) as conn:
        return list(conn.execute(sql, args))


def private_doc(db: Path) -> tuple[int, int] | None:
    """(generation, published_generation) of the ``private`` network's document."""
    rows = query(db, "SELECT d.generation, d.published_generation FROM network_published_docs d "
                     "JOIN network_networks n ON n.id = d.id WHERE d.type = 'network' AND n.name = 'private'")
    return rows[0] if rows else None


def test_a_change_committed_before_a_crash_is_published_by_the_next_process(tmp_path: Path) -> None:
    ini = write_ini(tmp_path)
    db = tmp_path / "state" / "tinystack.db"
    procs: list[subprocess.Popen[str]] = []
    try:
        proc, lines = up(ini, crash=False)
        procs.append(proc)
        wait_for("the cloud ready", lambda: proc.poll() is None and "clouds.yaml" in lines.get(timeout=120))
        first = wait_for("the private network's document published",
                         lambda: (d := private_doc(db)) is not None and d[0] == d[1] and d)
        stop(proc)

        query(db, "UPDATE network_networks SET mtu = 1400 WHERE name = 'private'")
        proc, _ = up(ini, crash=True)
        procs.append(proc)
        assert proc.wait(120) == CRASH_EXIT
        generation, published = wait_for("the document", lambda: private_doc(db))
        assert generation > first[0] and published == first[1], "the bump is committed, its publish never happened"

        proc, lines = up(ini, crash=False)
        procs.append(proc)
        after = wait_for("the document published by the next process",
                         lambda: (d := private_doc(db)) is not None and d[0] == d[1] and d)
        assert after[0] >= generation
        assert proc.poll() is None
    finally:
        for p in procs:
            stop(p)
        if (tmp_path / "stderr.log").exists() and any(p.returncode not in (0, CRASH_EXIT, -signal.SIGTERM)
                                                      for p in procs):
            print((tmp_path / "stderr.log").read_text()[-4000:])
