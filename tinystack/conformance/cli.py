"""``tinystack conformance {install,config,run,report}``: argument parsing and exit codes only.

Exit 0 when the harness did its job (failing tests included), 2 when it could not.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from tinystack.conformance import harness, report
from tinystack.conformance.errors import HarnessError
from tinystack.conformance.runner import DEFAULT_TEST_TIMEOUT
from tinystack.conformance.venv import DEFAULT_SPEC

DEFAULT_STATE_DIR = "/var/lib/tinystack"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinystack conformance",
        description="Run Tempest against a live OpenStack cloud and report how far it is from the interop guideline.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, helptext in (
        ("install", "create the Tempest venv and install Tempest into it"),
        ("config", "generate tempest.conf for the cloud in the work directory"),
        ("run", "install, configure, select the tests, run them and write the reports"),
        ("report", "re-render the reports of the last run in the work directory"),
    ):
        _common(sub.add_parser(name, help=helptext, description=helptext), name)
    return parser


def _common(p: argparse.ArgumentParser, command: str) -> None:
    p.add_argument(
        "--state-dir",
        type=Path,
        help=f"base for the defaults below (env TINYSTACK_STATE_DIR, else {DEFAULT_STATE_DIR})",
    )
    p.add_argument("--workdir", type=Path, help="where tempest.conf, the run and the reports go (default STATE_DIR/conformance)")
    p.add_argument("--venv", type=Path, help="Tempest's virtual environment (default STATE_DIR/tempest-venv)")
    if command in ("install", "run"):
        p.add_argument("--tempest-spec", default=DEFAULT_SPEC, help="pip requirement for Tempest, e.g. tempest==47.0.0")
    if command in ("config", "run"):
        p.add_argument(
            "--cloud-config",
            type=Path,
            help="clouds.yaml with 'admin' and/or 'demo' clouds (default env OS_CLIENT_CONFIG_FILE, else STATE_DIR/clouds.yaml)",
        )
        p.add_argument("--tests", type=Path, default=harness.DEFAULT_TESTS, help="test list (default: %(default)s)")
        p.add_argument("--subset", help="named subset of the list, e.g. 'ci' (tinystack/conformance/ci-subset.txt)")
        p.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="SECTION.OPTION=VALUE",
            help="override a generated tempest.conf option (recorded in the summary); repeatable",
        )
    if command == "run":
        p.add_argument("--concurrency", type=int, default=0, help="Tempest workers (default: Tempest's, the CPU count)")
        p.add_argument("--test-timeout", type=int, default=DEFAULT_TEST_TIMEOUT, help="seconds before one test is killed")


def options(args: argparse.Namespace) -> harness.Options:
    state = args.state_dir or Path(os.environ.get("TINYSTACK_STATE_DIR", DEFAULT_STATE_DIR))
    env_clouds = os.environ.get("OS_CLIENT_CONFIG_FILE")
    cloud_config = getattr(args, "cloud_config", None) or (Path(env_clouds) if env_clouds else state / "clouds.yaml")
    return harness.Options(
        workdir=(args.workdir or state / "conformance").absolute(),
        venv=(args.venv or state / "tempest-venv").absolute(),
        cloud_config=cloud_config,
        tests=getattr(args, "tests", harness.DEFAULT_TESTS),
        subset=getattr(args, "subset", None),
        concurrency=getattr(args, "concurrency", 0),
        tempest_spec=getattr(args, "tempest_spec", DEFAULT_SPEC),
        test_timeout=getattr(args, "test_timeout", DEFAULT_TEST_TIMEOUT),
        overrides=parse_overrides(getattr(args, "set", [])),
    )


def parse_overrides(items: list[str]) -> dict[str, str]:
    overrides: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise HarnessError(f"--set wants SECTION.OPTION=VALUE, got {item!r}")
        overrides[key.strip()] = value.strip()
    return overrides


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        opts = options(args)
        if args.command == "install":
            env = harness.install(opts)
            print(f"Tempest {env.tempest_version()} in {env.root}")
        elif args.command == "config":
            conf, facts = harness.configure(opts, harness.load_tests(opts))
            print(f"wrote {harness.Files(opts.workdir).tempest_conf}")
            for flag in conf.forced_available:
                print(f"  {flag}: not in the catalog, marked available so its tests fail rather than skip")
            for warning in facts.warnings:
                print(f"  warning: {warning}")
        elif args.command == "run":
            _show(harness.run(opts), opts)
        else:
            _show(harness.render(opts.workdir, opts.venv), opts)
    except HarnessError as exc:
        print(f"conformance: {exc}", file=sys.stderr)
        return 2
    return 0


def _show(data: dict[str, Any], opts: harness.Options) -> None:
    print(report.counts_table(data["services"]))
    print(f"reports: {opts.workdir}/summary.md, {opts.workdir}/failures.md, {opts.workdir}/summary.json")
    print(report.closing_line(data))
