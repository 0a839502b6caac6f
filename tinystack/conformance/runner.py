"""Drive Tempest inside its venv: a ``tempest init`` workspace, ``--list-tests``, ``tempest run --load-list``,
and the run's subunit stream turned into JSON lines by ``subunit_dump.py``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tinystack.conformance.errors import HarnessError
from tinystack.conformance.venv import TempestEnv

DUMPER = Path(__file__).with_name("subunit_dump.py")
DEFAULT_TEST_TIMEOUT = 900


class Workspace:
    """A Tempest workspace directory tied to one Tempest venv; its ``.stestr`` keeps every run."""

    def __init__(self, path: Path, env: TempestEnv) -> None:
        self.path = path
        self.env = env

    def ensure(self) -> None:
        stestr_conf = self.path / ".stestr.conf"
        if stestr_conf.exists() and str(self.env.root.resolve()) in stestr_conf.read_text():
            return
        # Made for another venv (its test_path points there): start a fresh one.
        if self.path.exists():
            shutil.rmtree(self.path)
        registry = self.path.parent / "tempest-workspaces.yaml"
        self._tempest(["init", "--workspace-path", str(registry), str(self.path)], cwd=self.path.parent)

    def list_tests(self, config_file: Path | None = None) -> list[str]:
        """The test ids as the run will see them: some attributes (``slow``) depend on tempest.conf."""
        args = ["run", "--list-tests"] + (["--config-file", str(config_file)] if config_file else [])
        extra = {"TEMPEST_CONFIG": str(config_file)} if config_file else {}
        out = self._tempest(args, cwd=self.path, capture=True, env=extra)
        return out.splitlines()

    def run(self, config_file: Path, load_list: Path, concurrency: int, log: Path, timeout: int) -> None:
        """Run the listed tests; the exit status of Tempest (non-zero whenever a test fails) is not an error."""
        before = self.run_count()
        argv = [str(self.env.bin("tempest")), "run", "--config-file", str(config_file), "--load-list", str(load_list)]
        argv += ["--concurrency", str(concurrency)] if concurrency > 0 else []
        env = dict(os.environ, OS_TEST_TIMEOUT=str(timeout), TEMPEST_CONFIG=str(config_file))
        print(f"conformance: running Tempest, log in {log}", file=sys.stderr, flush=True)
        with (
            log.open("w", encoding="utf-8") as out,
            subprocess.Popen(argv, cwd=self.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True) as proc,
        ):
            assert proc.stdout is not None
            for line in proc.stdout:
                out.write(line)
                # Tempest's per-test lines start with the worker, "{0} name ... ok": enough to show progress.
                if line.startswith("{"):
                    print(line.rstrip()[:200], file=sys.stderr, flush=True)
        if self.run_count() <= before:
            raise HarnessError(f"Tempest recorded no run; see {log}")

    def export_results(self, subunit_file: Path, results_file: Path) -> None:
        """Save the last run's subunit stream and its per-test JSON lines."""
        with subunit_file.open("wb") as out:
            done = subprocess.run([str(self.env.bin("stestr")), "last", "--subunit"], cwd=self.path, stdout=out, check=False)
        # stestr exits non-zero when the run had failures; only an empty stream is a problem.
        if subunit_file.stat().st_size == 0:
            raise HarnessError(f"stestr returned no subunit stream (exit {done.returncode})")
        dump_subunit(self.env, subunit_file, results_file)

    def run_count(self) -> int:
        repo = self.path / ".stestr"
        if not repo.is_dir():
            return 0
        return sum(1 for p in repo.iterdir() if p.name.isdigit())

    def _tempest(self, args: list[str], cwd: Path, capture: bool = False, env: dict[str, str] | None = None) -> str:
        cwd.mkdir(parents=True, exist_ok=True)
        done = subprocess.run([str(self.env.bin("tempest")), *args], cwd=cwd, capture_output=True, text=True,
                              check=False, env={**os.environ, **(env or {})})
        if done.returncode != 0:
            raise HarnessError(f"tempest {' '.join(args)} failed: {done.stderr.strip()[-2000:]}")
        return done.stdout if capture else ""


def dump_subunit(env: TempestEnv, subunit_file: Path, results_file: Path) -> None:
    with subunit_file.open("rb") as src, results_file.open("w", encoding="utf-8") as dst:
        done = subprocess.run([str(env.python), str(DUMPER)], stdin=src, stdout=dst, check=False)
    if done.returncode != 0:
        raise HarnessError(f"could not read the subunit stream {subunit_file}")
