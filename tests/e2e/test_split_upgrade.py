"""Issue 15: a schema upgrade while two ``tinystack api`` processes serve behind HAProxy (db tier, PostgreSQL),
as docs/deployment.md tells an operator to do it, with no failed request:

1. expand: the next release's additive migration (a nullable column and an index on the servers' table) applied
   by Alembic while clients list, create and delete;
2. the API processes replaced one at a time (SIGTERM, start again), HAProxy sending the requests to the other;
3. contract: the column dropped, again under load.

The migrations of "the next release" are the compute service's own history copied with two more revisions
after its head, run the way ``tinystack manage db-sync`` runs them (``tinystack.core.db.migrate``).
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, inspect

from tests.databases import available, scratch_database
from tests.e2e import splitcluster as sc
from tests.e2e.test_api_race import token
from tests.waiting import wait_for
from tinystack.compute.service import MIGRATIONS
from tinystack.core.db import migrate

pytestmark = [pytest.mark.db, pytest.mark.e2e]

EXPAND = '''"""Next release, expand: a nullable column and an index the old code does not know."""
import sqlalchemy as sa
from alembic import op

revision = "compute_9001"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("compute_instance", sa.Column("upgrade_probe", sa.String(64), nullable=True))
    op.create_index("ix_compute_instance_upgrade_probe", "compute_instance", ["upgrade_probe"])


def downgrade() -> None:
    op.drop_index("ix_compute_instance_upgrade_probe", "compute_instance")
    op.drop_column("compute_instance", "upgrade_probe")
'''
CONTRACT = '''"""A later release, contract: the column goes once no process of the old release is left."""
from alembic import op

revision = "compute_9002"
down_revision = "compute_9001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_compute_instance_upgrade_probe", "compute_instance")
    op.drop_column("compute_instance", "upgrade_probe")


def downgrade() -> None:
    raise NotImplementedError
'''


def head_of(location: Path) -> str:
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory(str(location), version_locations=[str(location)]).get_heads()
    assert len(heads) == 1, heads
    return str(heads[0])


class Load:
    """Clients through HAProxy until stopped: list servers, create one, delete one; every answer counted."""

    def __init__(self, compute: str, headers: dict[str, str], body: dict[str, Any]) -> None:
        self.compute, self.headers, self.body = compute, headers, body
        self.ok = 0
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(4)]

    def _run(self, i: int) -> None:
        s = requests.Session()
        n = 0
        while not self._stop.is_set():
            n += 1
            try:
                if i == 0:
                    r = s.post(f"{self.compute}/servers", headers=self.headers, json=self.body, timeout=60)
                    want = 202
                    if r.status_code == want:
                        sid = r.json()["server"]["id"]
                        d = s.delete(f"{self.compute}/servers/{sid}", headers=self.headers, timeout=60)
                        self._count(d.status_code == 204, f"DELETE {d.status_code} {d.text[:200]}")
                else:
                    r = s.get(f"{self.compute}/servers/detail", headers=self.headers, timeout=60)
                    want = 200
                self._count(r.status_code == want, f"{r.request.method} {r.status_code} {r.text[:200]}")
            except requests.RequestException as exc:
                self._count(False, repr(exc))

    def _count(self, ok: bool, what: str) -> None:
        if ok:
            self.ok += 1
        else:
            self.failed.append(what)

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(90)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[Path, str, dict[str, sc.Proc], dict[str, int], dict[str, Any]]]:
    if not available("postgresql"):
        pytest.fail("no PostgreSQL on loopback: the test command's setup should provide one")
    exchange = f"tinystack-upgrade-{uuid.uuid4().hex[:8]}"
    with scratch_database("postgresql") as db_url:
        ini = sc.write_config(tmp_path, db_url, exchange)
        front = {s: sc.free_port() for s in sc.FRONTED}
        backends = {n: {s: sc.free_port() for s in sc.FRONTED} for n in ("api1", "api2")}
        procs: dict[str, sc.Proc] = {}
        env = {n: sc.api_env(backends[n], front) for n in backends}
        try:
            procs["api1"] = sc.start("api", "api1", tmp_path, ini, env["api1"])
            procs["api2"] = sc.start("api", "api2", tmp_path, ini, env["api2"], seed=tmp_path / "api1")
            procs["haproxy"] = sc.start_haproxy(tmp_path, sc.haproxy_cfg(front, backends))
            yield tmp_path, db_url, procs, front, {"ini": ini, "env": env}
        finally:
            sc.stop_all(list(procs.values()))
            sc.remove_queues(exchange)


def test_expand_rolling_restart_and_contract_under_load(
        cluster: tuple[Path, str, dict[str, sc.Proc], dict[str, int], dict[str, Any]]) -> None:
    base, db_url, procs, front, how = cluster

    def balanced() -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{front['identity']}/v3", timeout=10).status_code == 200
        except requests.RequestException:
            return False

    wait_for(balanced, 60, "HAProxy to mark the API processes up", interval=0.5)
    tok, _ = token(f"http://127.0.0.1:{front['identity']}/v3", base / "api1")
    headers = {"X-Auth-Token": tok}
    compute = f"http://127.0.0.1:{front['compute']}/v2.1"
    image = requests.post(f"http://127.0.0.1:{front['image']}/v2/images", headers=headers, timeout=30, json={
        "name": "upgrade", "disk_format": "raw", "container_format": "bare"}).json()
    requests.put(f"http://127.0.0.1:{front['image']}/v2/images/{image['id']}/file", data=b"\0" * 4096, timeout=30,
                 headers={**headers, "Content-Type": "application/octet-stream"}).raise_for_status()
    flavor = next(f["id"] for f in requests.get(f"{compute}/flavors", headers=headers, timeout=30).json()["flavors"]
                  if f["name"] == "m1.tiny")
    body = {"server": {"name": "upgrading", "imageRef": image["id"], "flavorRef": flavor, "networks": "none"}}
    headers = {**headers, "OpenStack-API-Version": "compute 2.79"}
    # Both processes up behind the balancer before the clock starts.
    wait_for(lambda: all(requests.get(f"{compute}/servers", headers=headers, timeout=30).status_code == 200
                         for _ in range(4)), 60, "both API processes serving", interval=0.5)

    location = base / "next-release"
    shutil.copytree(MIGRATIONS, location,
                    ignore=shutil.ignore_patterns("__pycache__"))
    (location / "9001_expand.py").write_text(EXPAND.replace("{head}", head_of(location)))
    engine = create_engine(db_url)
    columns = lambda: {c["name"] for c in inspect(engine).get_columns("compute_instance")}  # noqa: E731
    try:
        with Load(compute, headers, body) as load:
            time.sleep(2)
            migrate(engine, "compute", location)  # expand, as db-sync with the next release's code
            assert "upgrade_probe" in columns()
            time.sleep(2)
            # The API processes replaced one at a time; the balancer sends requests to the other meanwhile.
            for name in ("api1", "api2"):
                procs[name].stop()
                procs[name] = sc.start("api", name, base, how["ini"], how["env"][name])
                wait_for(lambda: requests.get(f"{compute}/servers", headers=headers, timeout=30).status_code == 200,
                         60, f"{name} back", interval=0.5)
                time.sleep(3)  # HAProxy's checks (1 s, rise 2) put it back in rotation
            (location / "9002_contract.py").write_text(CONTRACT)
            migrate(engine, "compute", location)  # contract
            assert "upgrade_probe" not in columns()
            time.sleep(2)
        print(f"\nupgrade under load: {load.ok} requests answered, {len(load.failed)} failed")
        assert load.ok > 50, load.ok
        assert not load.failed, load.failed[:5]
    finally:
        engine.dispose()
