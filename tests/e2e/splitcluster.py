"""A split cloud in OS processes for the db tier and benchmarks/split_api.py: ``tinystack api`` processes behind
HAProxy, ``tinystack conductor`` processes and ``tinystack agent`` nodes, all reading one configuration file
(each process's host name, state dir and ports come from the environment, as docs/deployment.md shows)."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.rabbit import URL as RABBIT
from tests.rabbit import remove_now
from tinystack import config

ROOT = Path(__file__).resolve().parents[2]
# The APIs the balancer fronts: their version documents answer GET / without a token (the health check).
FRONTED = ("identity", "compute", "placement", "image", "network", "volume")
GUEST_CACHE = "/var/tmp/tinystack-guest-cache"
SECRET = "split-cluster-console-bridge-key"  # [console] node_secret: the API processes' and the agents'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def haproxy_cfg(front: dict[str, int], backends: dict[str, dict[str, int]], *, lean: bool = False) -> str:
    """``front``: service -> the balancer's port; ``backends``: API process name -> service -> its port.

    ``lean`` (benchmarks/split_api.py): one thread, and server connections reused across clients, so that the
    balancer costs as little CPU per request as it can beside the API processes on the same cores."""
    tuning = ["    nbthread 1"] if lean else []
    reuse = ["    option http-keep-alive", "    http-reuse always"] if lean else []
    out = ["global", "    maxconn 4096", *tuning, "defaults", "    mode http", *reuse, "    timeout connect 2s",
           "    timeout client 120s", "    timeout server 120s", "    retries 2", "    option redispatch",
           "    option httpchk GET /healthcheck", "    http-check expect rstatus ^[23]",
           # As docs/deployment.md: a long check timeout costs no failover time (a dead process refuses the
           # check's connection at once) and keeps a live one behind a burst of builds from being marked down.
           "    timeout check 15s", "    default-server check inter 1s fall 2 rise 2"]
    for service, port in front.items():
        out += [f"frontend {service}", f"    bind 127.0.0.1:{port}", f"    default_backend {service}",
                f"backend {service}", "    balance roundrobin"]
        out += [f"    server {name} 127.0.0.1:{ports[service]}" for name, ports in backends.items()]
    return "\n".join(out) + "\n"


@dataclass
class Proc:
    """One tinystack (or haproxy) process, its stderr in ``log``."""

    name: str
    proc: subprocess.Popen[str]
    log: Path
    lines: list[str] = field(default_factory=list)
    # What the process printed on stdout and has not been read yet (its ready line among them).
    pending: queue.Queue[str] = field(default_factory=queue.Queue)

    def kill9(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        stop_all([self])

    def state_report(self, wait: float = 3.0) -> str:
        """The process's SIGUSR2 state report (its tasks and threads, tinystack/core/signals.py), from its stderr."""
        if self.proc.poll() is not None:
            return f"{self.name} exited {self.proc.returncode}"
        self.proc.send_signal(signal.SIGUSR2)
        time.sleep(wait)
        text = self.log.read_text(errors="replace")
        at = text.rfind("state report (SIGUSR2)")
        return text[at:] if at >= 0 else f"{self.name}: no state report in {self.log}"

    def ready(self, role: str, timeout: float) -> Proc:
        """Waits for the ``tinystack <role> ... ready`` line; stops the process and fails if it does not come."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.pending.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                self.stop()
                raise AssertionError(f"{role} {self.name} did not start: {self.log.read_text()[-3000:]}") from None
            self.lines.append(line)
            if line.startswith("tinystack ") and "ready" in line:
                if role == "api":  # the URL lines follow
                    time.sleep(0.5)
                return self


def stop_all(procs: list[Proc], grace: float = 60) -> None:
    """SIGTERM to every running process at once, then waits for all of them (SIGKILL after ``grace``): stopping
    them one after the other cost the db tier tens of seconds per cluster."""
    running = [p for p in procs if p.proc.poll() is None]
    for p in running:
        p.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for p in running:
        try:
            p.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.proc.kill()
            p.proc.wait(10)


def write_config(base: Path, db_url: str, exchange: str, extra: str = "") -> Path:
    """The one configuration file every process reads."""
    ports = "".join(f"{p} = 0\n" for p in config.DEFAULTS["ports"])
    ini = base / "tinystack.conf"
    ini.write_text(
        f"[DEFAULT]\nbind = 127.0.0.1\n[database]\nconnection = {db_url}\n"
        f"[bus]\ntransport_url = {RABBIT}\nexchange = {exchange}\n[ports]\n{ports}"
        f"[fernet_tokens]\nkey_repository = {base / 'fernet-keys'}\n[identity]\npassword_hash_rounds = 4\n"
        "[compute]\ndriver = fake\nservice_down_time = 30\norphan_build_after = 15\nquota_instances = -1\n"
        "quota_cores = -1\nquota_ram = -1\n[network]\ndriver = fake\n[volume]\ndriver = fake\n"
        f"volume_host = node1\n[guest]\nauto_build = false\ncache_dir = {GUEST_CACHE}\n[desired]\n"
        f"sync_interval = 10\n[metrics]\nport = 0\n"
        # Each process's object storage node on ports of its own (the defaults would collide on one machine).
        "[object]\naccount_port = 0\ncontainer_port = 0\nobject_port = 0\npart_power = 6\n"
        # The nodes' console bridges, each on a free loopback port (the default 6081 would collide on one machine).
        f"[console]\nnode_secret = {SECRET}\nnode_listen = 127.0.0.1:0\n"
        f"{extra}")
    return ini


def start(role: str, name: str, base: Path, ini: Path, env: dict[str, str] | None = None,
          seed: Path | None = None, timeout: float = 120) -> Proc:
    """``tinystack <role>`` as host ``name`` with its own state dir; returns once it says it is ready."""
    return launch(role, name, base, ini, env, seed).ready(role, timeout)


def launch(role: str, name: str, base: Path, ini: Path, env: dict[str, str] | None = None,
           seed: Path | None = None) -> Proc:
    """``tinystack <role>`` started, not yet ready: ``Proc.ready`` waits, so that several start side by side."""
    state = base / name
    state.mkdir(exist_ok=True)
    for f in ("clouds.yaml", "service.yaml"):
        if seed is not None and (seed / f).exists():
            shutil.copy(seed / f, state / f)
    full = {**os.environ, "PYTHONPATH": str(ROOT), "TINYSTACK_HOST": name, "TINYSTACK_STATE_DIR": str(state),
            **(env or {})}
    log = state / "stderr.log"
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "tinystack.cli", "--config", str(ini), role], env=full,
                                stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT)
    p = Proc(name, proc, log)
    assert proc.stdout is not None
    out, pending = proc.stdout, p.pending
    threading.Thread(target=lambda: [pending.put(line) for line in out], daemon=True).start()
    return p


def start_haproxy(base: Path, cfg: str) -> Proc:
    path = base / "haproxy.cfg"
    path.write_text(cfg)
    log = base / "haproxy.log"
    check = subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    with open(log, "w") as err:
        proc = subprocess.Popen(["haproxy", "-db", "-f", str(path)], stdout=err, stderr=err, text=True)
    return Proc("haproxy", proc, log)


def api_env(ports: dict[str, int], front: dict[str, int]) -> dict[str, str]:
    """An API process's own ports and the balancer's ports its catalog names."""
    return {**{f"TINYSTACK_PORTS_{s.upper()}": str(p) for s, p in ports.items()},
            **{f"TINYSTACK_PUBLIC_PORTS_{s.upper()}": str(p) for s, p in front.items()}}


def remove_queues(exchange: str) -> None:
    queues = {f"{exchange}.{topic}.{group}" for topic, group in (
        ("status.compute", "compute"), ("resync.compute", "compute"), ("heartbeat", "compute"),
        ("events.network", "compute"), ("status.network", "network"), ("resync.network", "network"),
        ("status.volume", "volume"), ("resync.volume", "volume"))}
    remove_now(exchange, queues, RABBIT)
