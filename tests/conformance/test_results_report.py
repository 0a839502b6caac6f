"""From per-test records to outcomes, counts per service, and failure groups in the written reports."""

from __future__ import annotations

import json
from pathlib import Path

from tinystack.conformance import report, results
from tinystack.conformance.testlist import RequiredTest

REFUSED = (
    "Traceback (most recent call last):\n"
    '  File "/v/tempest/lib/services/image/v2/images_client.py", line 3, in create_image\n'
    "    x()\n"
    "urllib3.exceptions.MaxRetryError: HTTPConnectionPool(host='127.0.0.5', port=9292): Max retries exceeded "
    "with url: /v2/images (Caused by NewConnectionError('[Errno 111] Connection refused'))\n"
)
MISMATCH = 'Traceback (most recent call last):\n  File "t.py", line 1, in t\ntesttools.matchers._impl.MismatchError: 1 != 2\n'


def _test(service: str, name: str, n: int, flagged: bool = False) -> RequiredTest:
    return RequiredTest(service, f"{service}-cap", name, f"id-{n:08x}-0000-4000-8000-000000000000", flagged)


IMG = "tempest.api.image.v2.test_images.ListUserImagesTest"
IDN = "tempest.api.identity.v3.test_tokens.TokensV3Test"
NET = "tempest.api.network.test_networks.NetworksTest"
TESTS = [
    _test("identity", f"{IDN}.test_create_token", 1),
    _test("identity", f"{IDN}.test_validate_token", 2, flagged=True),
    _test("image", f"{IMG}.test_list_no_params", 3),
    _test("image", f"{IMG}.test_get_image_schema", 4),
    _test("network", f"{NET}.test_list_networks", 5),
    _test("network", f"{NET}.test_show_network", 6),
    _test("compute", "tempest.api.compute.gone.Gone.test_gone", 7),
]


def _listed(t: RequiredTest) -> str:
    return f"{t.name}[{t.idempotent_id},smoke]"


def _records() -> list[results.Record]:
    return [
        results.Record(_listed(TESTS[0]), "success"),
        results.Record(_listed(TESTS[1]), "fail", {"traceback": MISMATCH}, ("200 GET http://h:5000/v3/auth/tokens",)),
        results.Record(f"setUpClass ({IMG})", "fail", {"traceback": REFUSED}),
        results.Record(f"setUpClass ({NET})", "skip", {"reason": "NetworksTest skipped as neutron is not available"}),
        results.Record(f"tearDownClass ({IDN})", "fail", {"traceback": MISMATCH}),
    ]


def _selected() -> list[tuple[RequiredTest, str | None]]:
    return [(t, None if t.service == "compute" else _listed(t)) for t in TESTS]


def test_collate_expands_class_fixtures_and_keeps_missing_results() -> None:
    selected = _selected()
    # the identity tests' record for test 2 is missing from a run whose worker died
    records = [r for r in _records() if "validate" not in r.id]
    collated = results.collate(selected, records)
    status = {o.test.idempotent_id[3:11]: o.status for o in collated.outcomes}
    assert status == {
        "00000001": "passed",
        "00000002": "failed",
        "00000003": "failed",
        "00000004": "failed",
        "00000005": "skipped",
        "00000006": "skipped",
        "00000007": "not-found",
    }
    missing = collated.outcomes[1]
    assert missing.text.startswith("no result recorded")
    image = collated.outcomes[2]
    assert image.via == f"setUpClass ({IMG})"
    assert [r.id for r in collated.stray_failures] == [f"tearDownClass ({IDN})"]


def test_a_skip_inside_a_class_that_failed_to_set_up_is_a_failure() -> None:
    records = [
        *_records(),
        results.Record(_listed(TESTS[3]), "skip", {"reason": "The public_network_id option must be specified."}),
    ]
    outcome = results.collate(_selected(), records).outcomes[3]
    assert (outcome.status, outcome.via) == ("failed", f"setUpClass ({IMG})")


def test_fixture_requests_come_from_the_tempest_log() -> None:
    log = (
        "2026-11-21 INFO tempest.lib.common.rest_client [req-1 ] Request (ListUserImagesTest:setUpClass): "
        "503 POST http://h:9292/v2/images 0.003s\n"
        "2026-11-21 INFO tempest.lib.common.rest_client [req-2 ] Request (TokensV3Test:test_x): 200 GET http://h/ 0.1s\n"
    )
    fixture_log = results.fixture_requests(log)
    assert fixture_log == {"ListUserImagesTest:setUpClass": ("503 POST http://h:9292/v2/images",)}
    collated = results.collate(_selected(), _records(), fixture_log)
    assert collated.outcomes[2].requests == ("503 POST http://h:9292/v2/images",)


def test_summary_counts_and_groups() -> None:
    collated = results.collate(_selected(), _records())
    data = report.summary(collated, {"cloud": "http://h:5000/v3"})
    assert data["services"] == {
        "identity": {"passed": 1, "failed": 1, "skipped": 0, "not-found": 0},
        "image": {"passed": 0, "failed": 2, "skipped": 0, "not-found": 0},
        "network": {"passed": 0, "failed": 0, "skipped": 2, "not-found": 0},
        "compute": {"passed": 0, "failed": 0, "skipped": 0, "not-found": 1},
    }
    assert data["totals"] == {"passed": 1, "failed": 3, "skipped": 2, "not-found": 1}
    assert data["certification"] == {"required": 7, "passed": 1, "required_unflagged": 6, "passed_unflagged": 1}
    causes = [(g["count"], g["cause"]) for g in data["failure_causes"]]
    assert causes == [
        (2, "cannot connect to 127.0.0.5:9292"),
        (1, "MismatchError: 1 != 2"),
    ]
    assert data["skip_reasons"][0]["count"] == 2
    assert [t["idempotent_id"] for t in data["not_found"]] == [TESTS[6].idempotent_id]


def test_write_all_and_text_renderings(tmp_path: Path) -> None:
    collated = results.collate(_selected(), _records())
    data = report.write_all(tmp_path, collated, {"cloud": "http://h:5000/v3", "forced_available": ["glance"]})
    assert json.loads((tmp_path / "summary.json").read_text())["totals"] == data["totals"]
    summary_md = (tmp_path / "summary.md").read_text()
    assert "| image | 0 | 2 | 0 | 0 | 2 |" in summary_md
    assert "glance" in summary_md
    failures_md = (tmp_path / "failures.md").read_text()
    assert "## 2 tests: cannot connect to 127.0.0.5:9292" in failures_md
    assert f"`{IMG}.test_list_no_params` (image, in setUpClass)" in failures_md
    assert "# Skipped" in failures_md and "# Not in this Tempest" in failures_md
    assert f"`tearDownClass ({IDN})`" in failures_md
    table = report.counts_table(data["services"])
    assert table.splitlines()[-1].split() == ["total", "1", "3", "2", "1", "7"]
    assert report.closing_line(data).startswith("conformance: 1 passed, 3 failed, 2 skipped, 1 not found")
