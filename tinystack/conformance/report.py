"""Summaries of a run: per-service counts, failures grouped by cause, and the files summary.json,
summary.md and failures.md that say how far the cloud is from passing the test list."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinystack.conformance.causes import Cause, classify, classify_skip
from tinystack.conformance.results import FAILED, NOT_FOUND, PASSED, SKIPPED, STATUSES, Collated, Outcome, Record

EXCERPT_LINES = 12
EXCERPT_WIDTH = 300


@dataclass
class Group:
    cause: Cause
    outcomes: list[Outcome]


def service_counts(outcomes: list[Outcome]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for outcome in outcomes:
        row = counts.setdefault(outcome.test.service, dict.fromkeys(STATUSES, 0))
        row[outcome.status] += 1
    return counts


def totals(counts: dict[str, dict[str, int]]) -> dict[str, int]:
    total = dict.fromkeys(STATUSES, 0)
    for row in counts.values():
        for status, n in row.items():
            total[status] += n
    return total


def cause_of(outcome: Outcome) -> Cause | None:
    if outcome.status == FAILED:
        return classify(outcome.text, list(outcome.requests))
    if outcome.status == SKIPPED:
        return classify_skip(outcome.text)
    return None


def group(outcomes: list[Outcome], status: str) -> list[Group]:
    groups: dict[str, Group] = {}
    for outcome in outcomes:
        if outcome.status != status:
            continue
        cause = cause_of(outcome)
        assert cause is not None
        groups.setdefault(cause.title, Group(cause, [])).outcomes.append(outcome)
    return sorted(groups.values(), key=lambda g: (-len(g.outcomes), g.cause.title))


def certification(outcomes: list[Outcome]) -> dict[str, int]:
    """Passed out of required; flagged tests are the ones a guideline lets a cloud fail."""
    unflagged = [o for o in outcomes if not o.test.flagged]
    return {
        "required": len(outcomes),
        "passed": sum(o.status == PASSED for o in outcomes),
        "required_unflagged": len(unflagged),
        "passed_unflagged": sum(o.status == PASSED for o in unflagged),
    }


def summary(collated: Collated, meta: dict[str, Any]) -> dict[str, Any]:
    outcomes = collated.outcomes
    counts = service_counts(outcomes)
    return {
        "meta": meta,
        "totals": totals(counts),
        "services": counts,
        "certification": certification(outcomes),
        "failure_causes": [_group_json(g) for g in group(outcomes, FAILED)],
        "skip_reasons": [_group_json(g) for g in group(outcomes, SKIPPED)],
        "not_found": [_test_json(o) for o in outcomes if o.status == NOT_FOUND],
        "stray_failures": [{"id": r.id, "cause": classify(r.text, list(r.requests)).title} for r in collated.stray_failures],
        "tests": [{**_test_json(o), "status": o.status, "cause": _title(o), "via": o.via or None} for o in outcomes],
    }


def _title(outcome: Outcome) -> str | None:
    cause = cause_of(outcome)
    return cause.title if cause else None


def _test_json(outcome: Outcome) -> dict[str, Any]:
    t = outcome.test
    return {
        "service": t.service,
        "capability": t.capability,
        "name": t.name,
        "idempotent_id": t.idempotent_id,
        "flagged": t.flagged,
        "listed_name": outcome.listed_name,
    }


def _group_json(g: Group) -> dict[str, Any]:
    return {
        "kind": g.cause.kind,
        "cause": g.cause.title,
        "count": len(g.outcomes),
        "tests": [o.test.name for o in g.outcomes],
    }


def counts_table(counts: dict[str, dict[str, int]]) -> str:
    """Plain-text table for the terminal."""
    header = f"{'service':<16}" + "".join(f"{s:>11}" for s in STATUSES) + f"{'total':>8}"
    lines = [header, "-" * len(header)]
    for service, row in sorted(counts.items()):
        lines.append(f"{service:<16}" + "".join(f"{row[s]:>11}" for s in STATUSES) + f"{sum(row.values()):>8}")
    total = totals(counts)
    lines.append("-" * len(header))
    lines.append(f"{'total':<16}" + "".join(f"{total[s]:>11}" for s in STATUSES) + f"{sum(total.values()):>8}")
    return "\n".join(lines)


def closing_line(data: dict[str, Any]) -> str:
    t = data["totals"]
    cert = data["certification"]
    return (
        f"conformance: {t[PASSED]} passed, {t[FAILED]} failed, {t[SKIPPED]} skipped, {t[NOT_FOUND]} not found; "
        f"{cert['passed']}/{cert['required']} of the list pass"
    )


def summary_md(data: dict[str, Any]) -> str:
    meta = data["meta"]
    cert = data["certification"]
    out = ["# Conformance summary", ""]
    for key in ("finished", "cloud", "region", "tempest_version", "test_list", "subset", "commit"):
        if meta.get(key):
            out.append(f"- {key.replace('_', ' ')}: `{meta[key]}`")
    out += [
        "",
        f"**{cert['passed']} of {cert['required']}** listed tests pass "
        f"({cert['passed_unflagged']} of {cert['required_unflagged']} not counting flagged tests).",
        "",
        "| service | passed | failed | skipped | not found | total |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for service, row in sorted(data["services"].items()):
        out.append(f"| {service} | " + " | ".join(str(row[s]) for s in STATUSES) + f" | {sum(row.values())} |")
    t = data["totals"]
    out.append("| **total** | " + " | ".join(f"**{t[s]}**" for s in STATUSES) + f" | **{sum(t.values())}** |")
    out.append("")
    if meta.get("forced_available"):
        out.append(
            "Services the list requires but the catalog lacks were marked available, so their tests fail "
            f"instead of skipping: {', '.join(meta['forced_available'])}."
        )
        out.append("")
    if meta.get("config_overrides"):
        out.append("Operator overrides of the generated tempest.conf:")
        out += [f"- `{k} = {v}`" for k, v in meta["config_overrides"].items()]
        out.append("")
    if meta.get("created"):
        out.append("Made in the cloud by the harness, so that tests have the data they need:")
        out += [f"- {c}" for c in meta["created"]]
        out.append("")
    if meta.get("discovery_warnings"):
        out.append("Cloud discovery problems (the generated config lacks what these would have found):")
        out += [f"- {w}" for w in meta["discovery_warnings"]]
        out.append("")
    if data["failure_causes"]:
        out += ["## Failures by cause", "", "| tests | cause |", "|---:|---|"]
        out += [f"| {g['count']} | {_md_cell(g['cause'])} |" for g in data["failure_causes"]]
        out += ["", "Details in `failures.md`.", ""]
    return "\n".join(out)


def failures_md(collated: Collated, data: dict[str, Any]) -> str:
    out = ["# Failures by cause", ""]
    failed = group(collated.outcomes, FAILED)
    if not failed:
        out += ["No listed test failed.", ""]
    for g in failed:
        out += [f"## {_tests(len(g.outcomes))}: {g.cause.title}", "", f"Kind: {g.cause.kind}", ""]
        out += [f"- `{o.test.name}` ({_notes(o)})" for o in g.outcomes]
        out += ["", "Example:", "", "```", *_excerpt(g.outcomes[0]), "```", ""]
    skipped = group(collated.outcomes, SKIPPED)
    if skipped:
        out += ["# Skipped (not passed: a skipped required test does not count for certification)", ""]
        for g in skipped:
            out += [f"## {_tests(len(g.outcomes))}: {g.cause.title}", ""]
            out += [f"- `{o.test.name}` ({o.test.service})" for o in g.outcomes]
            out.append("")
    if data["not_found"]:
        out += ["# Not in this Tempest (idempotent id not found)", ""]
        out += [f"- `{t['idempotent_id']}` `{t['name']}` ({t['service']})" for t in data["not_found"]]
        out.append("")
    if collated.stray_failures:
        out += ["# Other failures (class clean-up, tests not on the list)", ""]
        out += _stray(collated.stray_failures)
    return "\n".join(out)


def _notes(outcome: Outcome) -> str:
    notes = [outcome.test.service]
    if outcome.test.flagged:
        notes.append("flagged")
    if outcome.via:
        notes.append(f"in {outcome.via.split(' ', 1)[0]}")
    return ", ".join(notes)


def _tests(n: int) -> str:
    return f"{n} test" if n == 1 else f"{n} tests"


def _stray(records: list[Record]) -> list[str]:
    return [f"- `{r.id}`: {classify(r.text, list(r.requests)).title}" for r in records] + [""]


def _excerpt(outcome: Outcome) -> list[str]:
    lines = outcome.text.rstrip().splitlines()[-EXCERPT_LINES:]
    if outcome.requests:
        lines += ["", "last requests:", *outcome.requests[-3:]]
    if outcome.via:
        lines.insert(0, f"(from {outcome.via})")
    # Some errors dump whole catalogs on one line: keep excerpts readable.
    return [_clip(line.replace("```", "'''")) for line in lines]


def _clip(line: str) -> str:
    return line if len(line) <= EXCERPT_WIDTH else line[:EXCERPT_WIDTH] + " …"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_all(workdir: Path, collated: Collated, meta: dict[str, Any]) -> dict[str, Any]:
    data = summary(collated, meta)
    (workdir / "summary.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    (workdir / "summary.md").write_text(summary_md(data), encoding="utf-8")
    (workdir / "failures.md").write_text(failures_md(collated, data), encoding="utf-8")
    return data
