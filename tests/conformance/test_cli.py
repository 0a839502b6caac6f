"""The command line: re-rendering a finished run, and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tinystack.conformance import cli
from tinystack.conformance.errors import HarnessError

NAME = "tempest.api.identity.v3.test_tokens.TokensV3Test.test_create_token"
TEST_ID = "id-6f8e4436-fc96-4282-8122-e41df57197a9"


def _finished_run(workdir: Path) -> None:
    row = {
        "service": "identity",
        "capability": "identity-v3-tokens-create",
        "name": NAME,
        "idempotent_id": TEST_ID,
        "flagged": False,
        "listed_name": f"{NAME}[{TEST_ID}]",
    }
    (workdir / "selection.json").write_text(json.dumps({"meta": {"cloud": "http://h/v3"}, "tests": [row]}))
    record = {"id": f"{NAME}[{TEST_ID}]", "status": "success", "tags": [], "details": {}, "requests": []}
    (workdir / "results.jsonl").write_text(json.dumps(record) + "\n")


def test_report_rerenders_a_finished_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _finished_run(tmp_path)
    assert cli.main(["report", "--workdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "conformance: 1 passed, 0 failed, 0 skipped, 0 not found" in out
    assert (tmp_path / "summary.md").is_file() and (tmp_path / "failures.md").is_file()


def test_report_without_a_run_is_a_harness_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["report", "--workdir", str(tmp_path)]) == 2
    assert "holds no run" in capsys.readouterr().err


def test_run_with_missing_clouds_yaml_fails_before_installing(tmp_path: Path) -> None:
    tests = tmp_path / "tests.txt"
    tests.write_text(f"identity\tcap\t{NAME}\t{TEST_ID}\n")
    argv = ["config", "--workdir", str(tmp_path / "w"), "--cloud-config", str(tmp_path / "none.yaml")]
    assert cli.main([*argv, "--tests", str(tests)]) == 2
    assert cli.main([*argv, "--tests", str(tmp_path / "missing.txt")]) == 2


def test_defaults_follow_the_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OS_CLIENT_CONFIG_FILE", raising=False)
    monkeypatch.setenv("TINYSTACK_STATE_DIR", str(tmp_path))
    opts = cli.options(cli.build_parser().parse_args(["run", "--subset", "ci", "--set", "compute.flavor_ref=7"]))
    assert opts.workdir == tmp_path / "conformance"
    assert opts.venv == tmp_path / "tempest-venv"
    assert opts.cloud_config == tmp_path / "clouds.yaml"
    assert opts.subset == "ci" and opts.overrides == {"compute.flavor_ref": "7"}
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", "/x/clouds.yaml")
    assert cli.options(cli.build_parser().parse_args(["run"])).cloud_config == Path("/x/clouds.yaml")


def test_bad_override() -> None:
    with pytest.raises(HarnessError):
        cli.parse_overrides(["nodot=1"])
