"""Issue 14's race test: two ``tinystack up`` processes on one PostgreSQL database and one RabbitMQ exchange take
1,000 concurrent, conflicting updates to the same servers, ports and volumes.

- No 5xx; a conflict is answered 409 (or Cinder's 400 for a volume in the wrong status), never a server error.
- No accepted update is lost: every metadata key and tag that was accepted is there at the end, a volume's size
  is the largest accepted extend, and a port's ``revision_number`` moved once per accepted write.
- Every agent converges: each server's, volume's and port document's ``generation`` is what its agent observed.
- No status report is handled twice: each process appends the ``message_id`` of every ``status.*`` message it
  handled to a file (``TINYSTACK_TRACE_STATUS``, tinystack/core/rabbitbus.py); no id may appear twice in all.

Both processes share the Fernet key repository (``[fernet_tokens] key_repository``, filled by the first at
start), so a token from one is valid at the other; the second starts with the first's clouds.yaml and
service.yaml in its state dir, so its identity bootstrap knows the passwords and resets none.
"""

from __future__ import annotations

import collections
import itertools
import json
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from sqlalchemy import create_engine, text

from tests.databases import available, scratch_database
from tests.rabbit import URL as RABBIT
from tests.rabbit import remove_now
from tinystack import config

pytestmark = [pytest.mark.db, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
THREADS = 16
GUEST_CACHE = "/var/tmp/tinystack-guest-cache"


@dataclass
class Process:
    """One ``tinystack up`` in an OS process of its own."""

    name: str
    state: Path
    proc: subprocess.Popen[str]
    urls: dict[str, str] = field(default_factory=dict)

    @property
    def trace(self) -> Path:
        return self.state / "status-trace.jsonl"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def start(name: str, base: Path, db_url: str, exchange: str, keys: Path, seed: Path | None = None) -> Process:
    state = base / name
    state.mkdir()
    if seed is not None:
        for f in ("clouds.yaml", "service.yaml"):
            shutil.copy(seed / f, state / f)
    ini = base / f"{name}.ini"
    ports = "".join(f"{p} = 0\n" for p in config.DEFAULTS["ports"])
    ini.write_text(f"[DEFAULT]\nhost = {name}\nstate_dir = {state}\nbind = 127.0.0.1\n"
                   f"[database]\nconnection = {db_url}\n[bus]\ntransport_url = {RABBIT}\nexchange = {exchange}\n"
                   f"[ports]\n{ports}[fernet_tokens]\nkey_repository = {keys}\n[identity]\npassword_hash_rounds = 4\n"
                   "[compute]\ndriver = fake\n[network]\ndriver = fake\n[volume]\ndriver = fake\n"
                   f"[guest]\nauto_build = false\ncache_dir = {GUEST_CACHE}\n[desired]\nsync_interval = 10\n"
                   # Two processes on one machine: metrics off, each object storage node on ports of its own.
                   "[metrics]\nport = 0\n[object]\naccount_port = 0\ncontainer_port = 0\nobject_port = 0\n"
                   "part_power = 6\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TINYSTACK_TRACE_STATUS": str(state / "status-trace.jsonl")}
    log = open(state / "stderr.log", "w")  # noqa: SIM115 - the child writes it until it exits
    proc = subprocess.Popen([sys.executable, "-m", "tinystack.cli", "--config", str(ini), "up"], env=env,
                            stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT)
    log.close()
    p = Process(name, state, proc)
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    out = proc.stdout
    threading.Thread(target=lambda: [lines.put(line) for line in out], daemon=True).start()
    deadline = time.monotonic() + 90
    while True:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            p.stop()
            raise AssertionError(f"{name} did not start: {(state / 'stderr.log').read_text()[-3000:]}") from None
        parts = line.split()
        if parts and parts[0] == "clouds.yaml":
            return p
        if len(parts) == 2 and parts[1].startswith("http://"):
            p.urls[parts[0]] = parts[1]


def token(identity: str, state: Path) -> tuple[str, str]:
    """An admin token (and its project id) from the password in clouds.yaml."""
    auth = yaml.safe_load((state / "clouds.yaml").read_text())["clouds"]["admin"]["auth"]
    r = requests.post(f"{identity}/auth/tokens", timeout=30, json={"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": auth["username"], "password": auth["password"], "domain": {"id": "default"}}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
    r.raise_for_status()
    return r.headers["X-Subject-Token"], r.json()["token"]["project"]["id"]


class Api:
    """Plain HTTP to one process's endpoints, one requests session per thread."""

    def __init__(self, p: Process, tok: str, project: str) -> None:
        self.urls = {k: v.replace("$(project_id)s", project) for k, v in p.urls.items()}
        self.headers = {"X-Auth-Token": tok, "OpenStack-API-Version": "compute 2.79"}
        self._local = threading.local()

    def call(self, method: str, service: str, path: str, **kw: Any) -> requests.Response:
        s = getattr(self._local, "s", None)
        if s is None:
            s = self._local.s = requests.Session()
        return s.request(method, self.urls[service] + path, headers={**self.headers, **kw.pop("headers", {})},
                         timeout=60, **kw)

    def ok(self, method: str, service: str, path: str, **kw: Any) -> Any:
        r = self.call(method, service, path, **kw)
        assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text[:500]}"
        return r.json() if r.content else None


def wait(what: str, check: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


@pytest.fixture
def two_apis(tmp_path: Path) -> Iterator[tuple[Process, Process, str]]:
    if not available("postgresql"):
        pytest.fail("no PostgreSQL on loopback: the test command's setup should provide one")
    exchange = f"tinystack-race-{uuid.uuid4().hex[:8]}"
    keys = tmp_path / "fernet-keys"
    procs: list[Process] = []
    with scratch_database("postgresql") as db_url:
        try:
            a = start("racea", tmp_path, db_url, exchange, keys)
            procs.append(a)
            procs.append(start("raceb", tmp_path, db_url, exchange, keys, seed=a.state))
            yield procs[0], procs[1], db_url
        finally:
            for p in procs:
                p.stop()
            queues = {f"{exchange}.{topic}.{group}" for topic, group in (
                ("status.compute", "compute"), ("resync.compute", "compute"), ("heartbeat", "compute"),
                ("events.network", "compute"), ("status.network", "network"), ("resync.network", "network"),
                ("status.volume", "volume"), ("resync.volume", "volume"))}
            remove_now(exchange, queues, RABBIT)


def test_thousand_conflicting_updates_over_two_api_processes(two_apis: tuple[Process, Process, str]) -> None:
    a_proc, b_proc, db_url = two_apis
    tok, project = token(a_proc.urls["identity"], a_proc.state)
    a, b = Api(a_proc, tok, project), Api(b_proc, tok, project)
    b.ok("GET", "compute", "/servers")  # the token is valid at the second process too (shared Fernet keys)

    # --- a handful of resources, half on each process's host ----------------------------------------------
    image = a.ok("POST", "image", "/v2/images", json={"name": "race", "disk_format": "raw",
                                                      "container_format": "bare", "visibility": "public"})
    a.ok("PUT", "image", f"/v2/images/{image['id']}/file", data=b"\0" * 4096,
         headers={"Content-Type": "application/octet-stream"})
    flavor = next(f["id"] for f in a.ok("GET", "compute", "/flavors")["flavors"] if f["name"] == "m1.tiny")
    net = a.ok("GET", "network", "/v2.0/networks?name=private")["networks"][0]["id"]
    servers = []
    for i, (api, host) in enumerate([(a, "racea"), (b, "raceb"), (a, "raceb"), (b, "racea")]):
        servers.append(api.ok("POST", "compute", "/servers", json={"server": {
            "name": f"race{i}", "imageRef": image["id"], "flavorRef": flavor, "networks": [{"uuid": net}],
            "availability_zone": f"nova:{host}"}})["server"]["id"])
    volumes = [api.ok("POST", "volume", "/volumes", json={"volume": {"size": 1, "name": f"race{i}"}})["volume"]["id"]
               for i, api in enumerate([a, b, a, b])]
    for sid in servers:
        wait(f"server {sid} ACTIVE", lambda sid=sid: a.ok("GET", "compute", f"/servers/{sid}")["server"]["status"]
             == "ACTIVE")
    for vid in volumes:
        wait(f"volume {vid} available",
             lambda vid=vid: a.ok("GET", "volume", f"/volumes/{vid}")["volume"]["status"] == "available")
    ports = [a.ok("GET", "network", f"/v2.0/ports?device_id={sid}")["ports"][0]["id"] for sid in servers]
    revisions = {pid: a.ok("GET", "network", f"/v2.0/ports/{pid}")["port"]["revision_number"] for pid in ports}

    # --- 1,000 conflicting updates, shuffled, alternating between the two processes -------------------------
    ops: list[tuple[str, str, int]] = (
        [("server_meta", servers[n % 4], n) for n in range(400)]
        + [("server_action", servers[n % 4], n) for n in range(120)]
        + [("port_tag", ports[n % 4], n) for n in range(120)]
        + [("port_update", ports[n % 4], n) for n in range(120)]
        + [("volume_meta", volumes[n % 4], n) for n in range(160)]
        + [("volume_extend", volumes[n % 4], n) for n in range(80)])
    random.Random(14).shuffle(ops)
    sizes = {vid: itertools.count(2) for vid in volumes}
    lock = threading.Lock()

    def send(i: int, op: tuple[str, str, int]) -> tuple[str, str, int, int, Any, str]:
        kind, rid, n = op
        api = (a, b)[i % 2]
        extra: Any = None
        if kind == "server_meta":
            r = api.call("PUT", "compute", f"/servers/{rid}/metadata/k{n}", json={"meta": {f"k{n}": str(n)}})
        elif kind == "server_action":
            r = api.call("POST", "compute", f"/servers/{rid}/action", json={("os-stop" if n // 4 % 2 else "os-start"): None})
        elif kind == "port_tag":
            r = api.call("PUT", "network", f"/v2.0/ports/{rid}/tags/t{n}")
        elif kind == "port_update":
            r = api.call("PUT", "network", f"/v2.0/ports/{rid}", json={"port": {
                "description": f"d{n}", "allowed_address_pairs": [{"ip_address": f"10.200.{n // 200}.{n % 200 + 1}"}]}})
        elif kind == "volume_meta":
            r = api.call("POST", "volume", f"/volumes/{rid}/metadata", json={"metadata": {f"k{n}": str(n)}})
        else:
            with lock:
                extra = next(sizes[rid])
            r = api.call("POST", "volume", f"/volumes/{rid}/action", json={"os-extend": {"new_size": extra}})
        return kind, rid, n, r.status_code, extra, r.text[:300] if r.status_code >= 500 else ""

    started = time.monotonic()
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(send, range(len(ops)), ops))
    fired = time.monotonic() - started
    codes = collections.Counter(r[3] for r in results)
    accepted = [r for r in results if r[3] < 300]
    errors = [r for r in results if r[3] >= 500]
    unexpected = [r for r in results if 300 <= r[3] < 500 and not (
        r[3] == 409 or (r[3] == 400 and r[0] == "volume_extend"))]
    assert not errors, f"{len(errors)} server errors, e.g. {errors[:3]}"
    assert not unexpected, f"unexpected answers: {unexpected[:5]}"

    # --- convergence: every generation observed by its agent --------------------------------------------------
    engine = create_engine(db_url)
    traces = (a_proc.trace, b_proc.trace)

    def observed_ports() -> dict[str, int]:
        out: dict[str, int] = {}
        for path in traces:
            for line in path.read_text().splitlines() if path.exists() else []:
                rec = json.loads(line)
                if rec["type"] == "port":
                    out[rec["id"]] = max(out.get(rec["id"], 0), int(rec["observed_generation"] or 0))
        return out

    def behind() -> list[str]:
        lag: list[str] = []
        with engine.connect() as c:
            for row in c.execute(text("SELECT id, generation, observed_generation, task_state FROM compute_instance "
                                      "WHERE id = ANY(:ids)"), {"ids": servers}):
                if row.generation != row.observed_generation or row.task_state is not None:
                    lag.append(f"server {row.id}: {row.observed_generation}/{row.generation} {row.task_state}")
            for row in c.execute(text("SELECT id, generation, observed_generation, status FROM volume_volume "
                                      "WHERE id = ANY(:ids)"), {"ids": volumes}):
                if row.generation != row.observed_generation or row.status != "available":
                    lag.append(f"volume {row.id}: {row.observed_generation}/{row.generation} {row.status}")
            seen = observed_ports()
            for row in c.execute(text("SELECT id, generation FROM network_published_docs WHERE type = 'port' "
                                      "AND id = ANY(:ids)"), {"ids": ports}):
                if seen.get(row.id) != row.generation:
                    lag.append(f"port {row.id}: {seen.get(row.id)}/{row.generation}")
        return lag

    settled = time.monotonic()
    last: list[list[str]] = [[]]

    def converged() -> bool:
        last[0] = behind()
        return not last[0]

    try:
        wait("every agent to observe the last accepted generation", converged, timeout=60)
    except AssertionError:
        raise AssertionError(f"not converged: {last[0]}") from None
    converge = time.monotonic() - settled

    # --- nothing accepted is lost ---------------------------------------------------------------------------
    lost: list[str] = []
    for sid in servers:
        have = a.ok("GET", "compute", f"/servers/{sid}/metadata")["metadata"]
        lost += [f"server {sid} k{n}" for kind, rid, n, *_ in accepted if kind == "server_meta" and rid == sid
                 and have.get(f"k{n}") != str(n)]
    for pid in ports:
        port = b.ok("GET", "network", f"/v2.0/ports/{pid}")["port"]
        lost += [f"port {pid} t{n}" for kind, rid, n, *_ in accepted if kind == "port_tag" and rid == pid
                 and f"t{n}" not in port["tags"]]
        writes = sum(1 for kind, rid, *_ in accepted if kind in ("port_tag", "port_update") and rid == pid)
        if port["revision_number"] - revisions[pid] != writes:
            lost.append(f"port {pid}: revision {revisions[pid]} -> {port['revision_number']} after {writes} writes")
    for vid in volumes:
        vol = b.ok("GET", "volume", f"/volumes/{vid}")["volume"]
        lost += [f"volume {vid} k{n}" for kind, rid, n, *_ in accepted if kind == "volume_meta" and rid == vid
                 and vol["metadata"].get(f"k{n}") != str(n)]
        want = max([1, *(r[4] for r in accepted if r[0] == "volume_extend" and r[1] == vid)])
        if vol["size"] != want:
            lost.append(f"volume {vid}: size {vol['size']}, the largest accepted extend {want}")

    # --- no status report handled twice, in one process or across both ----------------------------------------
    handled = {p.name: [json.loads(line)["message_id"] for line in p.trace.read_text().splitlines()]
               for p in (a_proc, b_proc)}
    every = collections.Counter(m for ids in handled.values() for m in ids)
    duplicates = {m: n for m, n in every.items() if n > 1}

    print(f"\nrace: {len(ops)} updates in {fired:.1f}s over two API processes: {len(accepted)} accepted, "
          f"{codes[409]} answered 409, {codes[400]} answered 400 (extend of a volume not available), "
          f"{len(errors)} 5xx; {len(lost)} lost; status reports handled: "
          f"{ {k: len(v) for k, v in handled.items()} }, {len(duplicates)} twice; converged {converge:.1f}s "
          f"after the last answer; by kind: "
          f"{dict(collections.Counter((r[0], r[3]) for r in results))}")
    kinds = collections.Counter(x.split()[0] + " revision" * ("revision" in x) for x in lost)
    assert not lost, f"lost updates: {dict(kinds)}: {lost[:3]}, {[x for x in lost if 'revision' in x or 'size' in x][:8]}"
    assert not duplicates, f"status messages handled more than once: {list(duplicates.items())[:10]}"
    assert all(handled.values()), f"both processes consume the shared status queues: {handled.keys()}"
