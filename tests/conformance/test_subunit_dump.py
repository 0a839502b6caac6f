"""subunit_dump.py under a real Tempest venv (skipped without one): a subunit v2 stream becomes JSON lines."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conformance.tempest_venv import find_tempest_venv
from tinystack.conformance.runner import DUMPER

# Written by the venv's own subunit library, so the test needs no subunit in tinystack's environment.
WRITER = r"""
import sys, subunit
out = subunit.StreamResultToBytes(sys.stdout.buffer)
def test(tid, status, files=()):
    out.status(test_id=tid, test_status="inprogress")
    for name, text in files:
        out.status(test_id=tid, file_name=name, file_bytes=text.encode(), mime_type="text/plain; charset=utf8")
    out.status(test_id=tid, test_status=status)
test("tempest.a.B.test_ok[id-1]", "success", [("pythonlogging:''",
    "INFO Request (B:test_ok): 200 GET http://h:5000/v3 0.01s\nINFO Request (B:test_ok): 404 GET http://h/x 0.1s\n")])
test("tempest.a.B.test_bad[id-2]", "fail", [("traceback", "Traceback (most recent call last):\nValueError: no\n")])
test("setUpClass (tempest.a.C)", "skip", [("reason", "C skipped as glance is not available")])
"""


@pytest.mark.skipif(find_tempest_venv() is None, reason="no Tempest venv with python-subunit on this machine")
def test_dump_round_trip() -> None:
    python = str((find_tempest_venv() or Path()) / "bin" / "python")
    stream = subprocess.run([python, "-c", WRITER], capture_output=True, check=True).stdout
    done = subprocess.run([python, str(DUMPER)], input=stream, capture_output=True, check=True)
    records = {r["id"]: r for r in map(json.loads, done.stdout.decode().splitlines())}
    assert records["tempest.a.B.test_ok[id-1]"]["status"] == "success"
    assert records["tempest.a.B.test_ok[id-1]"]["requests"] == ["200 GET http://h:5000/v3", "404 GET http://h/x"]
    assert records["tempest.a.B.test_bad[id-2]"]["details"]["traceback"].endswith("ValueError: no\n")
    assert records["setUpClass (tempest.a.C)"]["details"]["reason"] == "C skipped as glance is not available"
