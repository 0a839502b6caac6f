"""``tinystack doctor`` on the command line: exit status and JSON, on a state dir whose cloud never ran and on
one whose schemas are at head but with nothing reporting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tinystack.cli import main

pytestmark = pytest.mark.unit


def test_doctor_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--state-dir", str(tmp_path), "--listen", "0", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["healthy"] is False
    assert any(f["check"] == "database" and f["level"] == "error" and "never run a cloud" in f["what"]
               for f in doc["findings"])
    assert main(["manage", "db-sync", "--state-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["doctor", "--state-dir", str(tmp_path), "--listen", "0"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("tinystack doctor: ") and "no compute service or network agent has ever reported" in out
    assert "-> start the cloud" in out
