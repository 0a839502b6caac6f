"""One outcome per selected test from Tempest's per-test records, including tests that never reported
themselves because their class fixture (``setUpClass``) failed or skipped, or because the run died."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinystack.conformance.testlist import RequiredTest, base_name, find_id

PASSED, FAILED, SKIPPED, NOT_FOUND = "passed", "failed", "skipped", "not-found"
STATUSES = (PASSED, FAILED, SKIPPED, NOT_FOUND)
# subunit status -> outcome; anything else (inprogress, exists, none) means the test never finished
SUBUNIT_STATUS = {"success": PASSED, "xfail": PASSED, "fail": FAILED, "uxsuccess": FAILED, "skip": SKIPPED}
FIXTURE_RE = re.compile(r"^(setUpClass|tearDownClass|setUpModule|tearDownModule) \(([\w.]+)\)$")
# tempest.log: "Request (TestApiDiscovery:setUpClass): 404 GET http://…"; class fixtures' requests are only there
LOG_REQUEST_RE = re.compile(r"Request \((\w+:(?:setUp|tearDown)\w*)\): (\d{3} [A-Z]+ \S+)")


@dataclass(frozen=True)
class Record:
    """One line of results.jsonl (see subunit_dump.py)."""

    id: str
    status: str
    details: dict[str, str] = field(default_factory=dict)
    requests: tuple[str, ...] = ()
    duration: float | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Record:
        return cls(
            id=data["id"],
            status=data.get("status") or "",
            details=dict(data.get("details") or {}),
            requests=tuple(data.get("requests") or ()),
            duration=data.get("duration"),
        )

    @property
    def text(self) -> str:
        """The traceback of a failure, the reason of a skip."""
        return self.details.get("traceback") or self.details.get("reason") or ""


@dataclass
class Outcome:
    test: RequiredTest
    listed_name: str | None
    status: str
    text: str = ""
    requests: tuple[str, ...] = ()
    # the fixture record ("setUpClass (…)") this outcome was inherited from, if any
    via: str = ""


@dataclass
class Collated:
    outcomes: list[Outcome]
    # failures that belong to no selected test: tearDownClass errors, tests not asked for
    stray_failures: list[Record]


def read_records(path: Path) -> list[Record]:
    return [Record.from_json(json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def fixture_requests(log_text: str) -> dict[str, tuple[str, ...]]:
    """``Class:setUpClass`` -> the requests it made, from Tempest's log of the run."""
    found: dict[str, list[str]] = {}
    for caller, request in LOG_REQUEST_RE.findall(log_text):
        found.setdefault(caller, []).append(request)
    return {caller: tuple(requests) for caller, requests in found.items()}


def collate(
    selected: Iterable[tuple[RequiredTest, str | None]],
    records: list[Record],
    fixture_log: dict[str, tuple[str, ...]] | None = None,
) -> Collated:
    """Give every selected test (``listed_name`` None: not in this Tempest) exactly one outcome."""
    by_name: dict[str, Record] = {}
    by_id: dict[str, Record] = {}
    fixtures: list[tuple[str, Record]] = []
    for record in records:
        fixture = FIXTURE_RE.match(record.id)
        if fixture:
            fixtures.append((fixture.group(2), record))
            continue
        by_name[base_name(record.id)] = record
        if find_id(record.id):
            by_id[find_id(record.id)] = record
    used: set[str] = set()
    outcomes: list[Outcome] = []
    for test, listed in selected:
        if listed is None:
            outcomes.append(Outcome(test, None, NOT_FOUND))
            continue
        found = by_name.get(base_name(listed)) or (by_id.get(test.idempotent_id) if test.idempotent_id else None)
        fixture_record = _fixture_for(base_name(listed), fixtures)
        # A test skipped by a decorator still reports a skip when its class could not even be set up; the
        # set-up failure is the real verdict (a missing service must not read as a skip).
        overridden = found is not None and found.status == "skip" and _failed(fixture_record)
        if found is not None and not overridden:
            used.add(found.id)
            outcomes.append(_from_record(test, listed, found))
            continue
        if fixture_record is not None:
            used.add(fixture_record.id)
            outcome = _from_record(test, listed, fixture_record)
            outcome.via = fixture_record.id
            fixture = FIXTURE_RE.match(fixture_record.id)
            if fixture and not outcome.requests and fixture_log:
                caller = f"{fixture.group(2).rsplit('.', 1)[-1]}:{fixture.group(1)}"
                outcome.requests = fixture_log.get(caller, ())
            outcomes.append(outcome)
            continue
        outcomes.append(Outcome(test, listed, FAILED, "no result recorded: the test did not run or its worker died"))
    stray = [r for r in records if r.id not in used and SUBUNIT_STATUS.get(r.status) == FAILED]
    return Collated(outcomes, stray)


def _from_record(test: RequiredTest, listed: str, record: Record) -> Outcome:
    status = SUBUNIT_STATUS.get(record.status, FAILED)
    text = record.text
    if record.status not in SUBUNIT_STATUS:
        text = f"test did not finish (status {record.status or 'unknown'})\n{text}"
    elif record.status == "uxsuccess":
        text = "unexpected success of a test marked as expected to fail"
    return Outcome(test, listed, status, text, record.requests)


def _failed(record: Record | None) -> bool:
    return record is not None and SUBUNIT_STATUS.get(record.status) == FAILED


def _fixture_for(name: str, fixtures: list[tuple[str, Record]]) -> Record | None:
    """The failing or skipping set-up fixture whose class or module contains test ``name``."""
    for target, record in fixtures:
        setup = record.id.startswith("setUp")
        if setup and name.startswith(target + ".") and SUBUNIT_STATUS.get(record.status) in (FAILED, SKIPPED):
            return record
    return None
