"""The five steps of a conformance run (install, configure, select, run, report) over one work directory,
whose files let ``report`` re-render a finished run without Tempest."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinystack.conformance import cloud, config, report, results, testlist
from tinystack.conformance.errors import HarnessError
from tinystack.conformance.runner import DEFAULT_TEST_TIMEOUT, Workspace, dump_subunit
from tinystack.conformance.venv import DEFAULT_SPEC, TempestEnv, ensure_tempest

REPO_ROOT = Path(__file__).resolve().parents[2]
# The interop guideline's list: the shared copy beside the repository when there is one, else the copy
# shipped with the package (interop guideline 2020.06), so an installed tinystack can run it anywhere.
_SHARED_TESTS = REPO_ROOT.parent / "shared" / "conformance" / "required-tests.txt"
DEFAULT_TESTS = _SHARED_TESTS if _SHARED_TESTS.exists() else Path(__file__).with_name("interop-2020.06-required-tests.txt")


@dataclass
class Options:
    workdir: Path
    venv: Path
    cloud_config: Path
    tests: Path = DEFAULT_TESTS
    subset: str | None = None
    concurrency: int = 0
    tempest_spec: str = DEFAULT_SPEC
    test_timeout: int = DEFAULT_TEST_TIMEOUT
    overrides: dict[str, str] = field(default_factory=dict)


class Files:
    """Where each artefact of a run lives inside the work directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.workspace = root / "tempest"
        self.tempest_conf = root / "tempest.conf"
        self.accounts = root / "accounts.yaml"
        self.listing = root / "tempest-tests.txt"
        self.load_list = root / "load-list.txt"
        self.selection = root / "selection.json"
        self.run_log = root / "tempest-run.log"
        self.subunit = root / "results.subunit"
        self.results = root / "results.jsonl"
        self.tempest_log = self.workspace / "logs" / "tempest.log"


def install(opts: Options) -> TempestEnv:
    return ensure_tempest(opts.venv, opts.tempest_spec)


def load_tests(opts: Options) -> list[testlist.RequiredTest]:
    if not opts.tests.is_file():
        raise HarnessError(f"test list {opts.tests} not found (pass --tests)")
    tests = testlist.read_tests(opts.tests)
    if opts.subset:
        path = testlist.subset_path(opts.subset)
        if not path.is_file():
            raise HarnessError(f"no subset named {opts.subset!r} ({path} is missing)")
        tests = testlist.apply_subset(tests, testlist.read_tests(path))
    if not tests:
        raise HarnessError(f"{opts.tests} lists no tests")
    return tests


def configure(opts: Options, tests: list[testlist.RequiredTest]) -> tuple[config.TempestConfig, cloud.CloudFacts]:
    """Probe the cloud and write tempest.conf (and accounts.yaml without admin), readable by the owner only."""
    files = Files(opts.workdir)
    opts.workdir.mkdir(parents=True, exist_ok=True)
    facts = cloud.discover(opts.cloud_config)
    conf = config.build(facts, {t.service for t in tests}, files.workspace, files.accounts, opts.overrides)
    _write_private(files.tempest_conf, conf.text())
    if conf.accounts_yaml is not None:
        _write_private(files.accounts, conf.accounts_yaml)
    return conf, facts


def run(opts: Options) -> dict[str, Any]:
    files = Files(opts.workdir)
    started = _now()
    for stale in (files.subunit, files.results, files.tempest_log):
        stale.unlink(missing_ok=True)
    tests = load_tests(opts)
    env = install(opts)
    conf, facts = configure(opts, tests)
    workspace = Workspace(files.workspace, env)
    workspace.ensure()
    listing = testlist.parse_listing(workspace.list_tests(files.tempest_conf))
    files.listing.write_text("\n".join(listing) + "\n", encoding="utf-8")
    resolution = testlist.resolve(tests, listing)
    if not resolution.selected:
        raise HarnessError(f"none of the {len(tests)} tests is in Tempest {env.tempest_version()}")
    files.load_list.write_text("\n".join(resolution.load_list()) + "\n", encoding="utf-8")
    meta = {
        "started": started,
        "cloud": facts.auth_url,
        "region": facts.region,
        "catalog": sorted(facts.services),
        "advertised_microversions": {k: f"{lo}-{hi}" for k, (lo, hi) in facts.microversions.items()},
        "forced_available": conf.forced_available,
        "discovery_warnings": facts.warnings,
        "created": facts.created,
        "config_overrides": conf.overrides,
        "tempest_version": env.tempest_version(),
        "test_list": str(opts.tests),
        "subset": opts.subset,
        "commit": _commit(),
    }
    _write_selection(files.selection, meta, tests, resolution)
    workspace.run(files.tempest_conf, files.load_list, opts.concurrency, files.run_log, opts.test_timeout)
    workspace.export_results(files.subunit, files.results)
    meta["finished"] = _now()
    _write_selection(files.selection, meta, tests, resolution)
    return render(opts.workdir)


def render(workdir: Path, venv: Path | None = None) -> dict[str, Any]:
    """(Re)write summary.json, summary.md and failures.md from the work directory's last run."""
    files = Files(workdir)
    if not files.selection.is_file():
        raise HarnessError(f"{workdir} holds no run (no {files.selection.name})")
    if not files.results.is_file():
        if venv is None or not files.subunit.is_file():
            raise HarnessError(f"{workdir} holds no results ({files.results.name})")
        dump_subunit(TempestEnv(venv), files.subunit, files.results)
    selection = json.loads(files.selection.read_text(encoding="utf-8"))
    selected = [(_required(t), t.get("listed_name")) for t in selection["tests"]]
    log = files.tempest_log.read_text(encoding="utf-8", errors="replace") if files.tempest_log.is_file() else ""
    collated = results.collate(selected, results.read_records(files.results), results.fixture_requests(log))
    return report.write_all(workdir, collated, selection["meta"])


def _write_selection(
    path: Path, meta: dict[str, Any], tests: list[testlist.RequiredTest], resolution: testlist.Resolution
) -> None:
    listed = {t.idempotent_id or t.name: (t, name) for t, name in resolution.selected.items()}
    rows = []
    for test in tests:
        resolved, name = listed.get(test.idempotent_id or test.name, (test, None))
        rows.append({**resolved.__dict__, "listed_name": name})
    path.write_text(json.dumps({"meta": meta, "tests": rows}, indent=2) + "\n", encoding="utf-8")


def _required(row: dict[str, Any]) -> testlist.RequiredTest:
    return testlist.RequiredTest(row["service"], row["capability"], row["name"], row["idempotent_id"], bool(row.get("flagged")))


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    path.chmod(0o600)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _commit() -> str | None:
    done = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or None if done.returncode == 0 else None
