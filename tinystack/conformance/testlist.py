"""Test lists: parse the interop required-tests file, pick a subset, and resolve idempotent ids to the
test names of the installed Tempest (tests move between modules across releases; their ids do not)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

ID_RE = re.compile(r"id-[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
LISTED_RE = re.compile(r"^[A-Za-z_][\w.]*\.[A-Za-z_]\w*(\[[^\]]*\])?$")
SUBSETS_DIR = Path(__file__).parent


@dataclass(frozen=True)
class RequiredTest:
    """One line of a test list. ``service`` is the guideline's name (compute, image, object_storage...)."""

    service: str
    capability: str
    name: str
    idempotent_id: str
    flagged: bool = False


@dataclass
class Resolution:
    """Which required tests this Tempest has (``selected``: test -> listed name) and which it lacks."""

    selected: dict[RequiredTest, str] = field(default_factory=dict)
    not_found: list[RequiredTest] = field(default_factory=list)

    def load_list(self) -> list[str]:
        return sorted(set(self.selected.values()))


def base_name(test_id: str) -> str:
    """``a.b.C.test_x[id-...,smoke]`` -> ``a.b.C.test_x``."""
    return test_id.split("[", 1)[0].strip()


def find_id(text: str) -> str:
    match = ID_RE.search(text)
    return match.group(0).lower() if match else ""


def service_of(name: str) -> str:
    """Guess the service of a test that came without one: ``tempest.api.<service>.…``."""
    parts = base_name(name).split(".")
    if len(parts) > 2 and parts[0] == "tempest" and parts[1] == "api":
        return parts[2]
    if len(parts) > 1 and parts[0] == "tempest":
        return parts[1]
    return "unknown"


def parse_line(line: str) -> RequiredTest | None:
    """Parse one line: the guideline's tab-separated form, a listed test name, or a bare ``id-<uuid>``."""
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    fields = line.split("\t")
    if len(fields) >= 4:
        service, capability, name = (f.strip() for f in fields[:3])
        # The guideline file puts "flagged" after the id with a space or a tab: accept both.
        rest = " ".join(fields[3:]).split()
        return RequiredTest(service, capability, base_name(name), find_id(rest[0]) if rest else "", "flagged" in rest[1:])
    token = line.split()[0]
    test_id = find_id(line)
    if ID_RE.fullmatch(token):
        return RequiredTest("unknown", "", "", test_id)
    return RequiredTest(service_of(token), "", base_name(token), test_id)


def parse_tests(lines: Iterable[str]) -> list[RequiredTest]:
    """Parse a test list, dropping repeats of an id (the guideline lists some tests under two capabilities)."""
    tests: list[RequiredTest] = []
    seen: set[str] = set()
    for line in lines:
        test = parse_line(line)
        if test is None:
            continue
        key = test.idempotent_id or test.name
        if key in seen:
            continue
        seen.add(key)
        tests.append(test)
    return tests


def read_tests(path: Path) -> list[RequiredTest]:
    return parse_tests(path.read_text(encoding="utf-8").splitlines())


def subset_path(name: str) -> Path:
    return SUBSETS_DIR / f"{name}-subset.txt"


def apply_subset(tests: list[RequiredTest], subset: list[RequiredTest]) -> list[RequiredTest]:
    """Keep the tests of ``tests`` named by ``subset`` (by id); subset entries unknown to ``tests`` are kept too."""
    wanted = [t.idempotent_id or t.name for t in subset]
    by_key = {t.idempotent_id or t.name: t for t in tests}
    return [by_key.get(key, entry) for key, entry in zip(wanted, subset, strict=True)]


def parse_listing(lines: Iterable[str]) -> list[str]:
    """Test ids from ``tempest run --list-tests`` output; log lines and blanks are dropped."""
    return [line.strip() for line in lines if LISTED_RE.match(line.strip())]


def resolve(tests: list[RequiredTest], listing: list[str]) -> Resolution:
    """Match by name when this Tempest has the test under its listed name, else by idempotent id (tests move
    between modules across releases); a test given without an id is matched by name only. The name comes
    first because subclasses share their parent's ids (``ServersTestBootFromVolume`` runs every
    ``ServersTestJSON`` test under the same id), and the list names the variant it requires."""
    by_id: dict[str, str] = {}
    by_name: dict[str, str] = {}
    for listed in listing:
        attrs = listed[len(base_name(listed)) :]
        test_id = find_id(attrs)
        if test_id:
            by_id.setdefault(test_id, listed)
        by_name.setdefault(base_name(listed), listed)
    resolution = Resolution()
    for test in tests:
        listed_name = by_name.get(test.name) if test.name else None
        if listed_name is None and test.idempotent_id:
            listed_name = by_id.get(test.idempotent_id)
        if listed_name is None:
            resolution.not_found.append(test)
        else:
            if test.service == "unknown" or not test.name:
                test = replace(test, service=service_of(listed_name), name=base_name(listed_name))
            resolution.selected[test] = listed_name
    return resolution
