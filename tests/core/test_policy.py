"""Tests for the policy engine: rule language, rule references, target substitution and file reloads."""

from __future__ import annotations

import logging
import os
import pathlib
import time
from typing import Any

import pytest

from tinystack.core.errors import Forbidden, PolicyNotAuthorized
from tinystack.core.policy import PolicyEngine, PolicyError, compile_rule

MEMBER: dict[str, Any] = {
    "roles": ["member", "reader"],
    "project_id": "p1",
    "user_id": "u1",
    "domain_id": "d1",
}
ADMIN: dict[str, Any] = {"roles": ["Admin"], "project_id": "p0", "is_admin": True, "system_scope": "all"}


def engine(**rules: str) -> PolicyEngine:
    e = PolicyEngine()
    e.register_defaults(rules)
    return e


def ok(rule: str, target: dict[str, Any] | None = None, creds: dict[str, Any] | None = None) -> bool:
    return engine(r=rule).check("r", target or {}, MEMBER if creds is None else creds)


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("@", True),
        ("!", False),
        ("", True),
        ("   ", True),
        ("not @", False),
        ("not !", True),
        ("not not @", True),
        ("@ and @", True),
        ("@ and !", False),
        ("! and @", False),
        ("@ or !", True),
        ("! or !", False),
        ("! or ! or @", True),
        ("@ and @ and !", False),
        ("@ AND @", True),
        ("NOT !", True),
        # not binds tighter than and, and tighter than or.
        ("not ! and !", False),
        ("not (! and !)", True),
        ("@ or ! and !", True),
        ("(@ or !) and !", False),
        ("! and ! or @", True),
        ("! and (! or @)", False),
        ("not @ or @", True),
        ("not (@ or @)", False),
        ("((role:member))", True),
        ("(role:admin or role:member) and project_id:%(project_id)s", True),
        ("role:admin or (role:member and project_id:%(owner)s)", False),
    ],
)
def test_operators_and_precedence(rule: str, expected: bool) -> None:
    assert ok(rule, {"project_id": "p1", "owner": "p2"}) is expected


def test_roles_are_case_insensitive() -> None:
    assert ok("role:MEMBER")
    assert ok("role:admin", creds=ADMIN)
    assert ok("role:ADMIN", creds=ADMIN)
    assert not ok("role:admin")
    assert not ok("role:member", creds={"project_id": "p1"})
    assert ok("role:%(role)s", {"role": "Reader"})
    assert not ok("role:%(missing)s", {})


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("project_id:%(project_id)s", True),
        ("project_id:%(target.project.id)s", True),
        ("domain_id:%(target.project.domain_id)s", True),
        ("domain_id:%(flat.domain_id)s", True),
        ("user_id:%(user_id)s", False),
        ("project_id:p1", True),
        ("project_id:'p1'", True),
        ('project_id:"p1"', True),
        ("project_id:p2", False),
        ("user_id:u1 and domain_id:d1", True),
        ("project_id:%(project_id)s-x", False),
        ("user_id:%(user_id)s%(project_id)s", False),
        ("roles:reader", True),
        ("roles:%(project_id)s", False),
        # missing keys on either side refuse rather than raise
        ("project_id:%(nope)s", False),
        ("project_id:%(target.nope.id)s", False),
        ("project_id:%(target.project.id.deeper)s", False),
        ("nope:%(project_id)s", False),
        ("nope:p1", False),
        ("not nope:p1", True),
    ],
)
def test_generic_checks_and_target_substitution(rule: str, expected: bool) -> None:
    target = {
        "project_id": "p1",
        "user_id": "u2",
        "target": {"project": {"id": "p1", "domain_id": "d1"}},
        "flat.domain_id": "d1",
    }
    assert ok(rule, target) is expected


def test_flat_dotted_key_wins_over_nested_path() -> None:
    target = {"target.project.id": "p1", "target": {"project": {"id": "p9"}}}
    assert ok("project_id:%(target.project.id)s", target)


def test_substitution_inside_a_larger_match() -> None:
    assert ok("user_id:%(prefix)s1", {"prefix": "u"})
    assert ok("user_id:%(a)s%(b)s", {"a": "u", "b": 1})


def test_creds_literals_and_booleans() -> None:
    assert ok("is_admin:True", creds=ADMIN)
    assert not ok("is_admin:False", creds=ADMIN)
    assert ok("is_admin:False", creds={"is_admin": False})
    assert not ok("is_admin:True")
    assert ok("system_scope:all", creds=ADMIN)
    assert not ok("system_scope:all")
    assert ok("token.project.id:p1", creds={"token": {"project": {"id": "p1"}}})


def test_none_never_matches_none() -> None:
    # A system-scoped token (project_id None) must not own resources that have no project.
    assert not ok("project_id:%(project_id)s", {"project_id": None}, {"project_id": None})


def test_literal_on_the_left() -> None:
    assert ok("True:%(enabled)s", {"enabled": True})
    assert not ok("True:%(enabled)s", {"enabled": False})
    assert ok("False:%(enabled)s", {"enabled": False})
    assert not ok("True:%(enabled)s", {})
    assert ok("'member':%(role.name)s", {"role": {"name": "member"}})
    assert ok('"member":%(role.name)s', {"role.name": "member"})
    assert not ok("'member':%(role.name)s", {"role": {"name": "admin"}})
    assert ok("'a:b':%(x)s", {"x": "a:b"})
    assert ok("'x':x")


def test_rule_references() -> None:
    e = engine(
        admin="role:admin",
        owner="project_id:%(project_id)s",
        admin_or_owner="rule:admin or rule:owner",
        nested="rule:admin_or_owner and not rule:dangling",
        dangling_only="rule:dangling",
    )
    assert e.check("admin_or_owner", {"project_id": "p1"}, MEMBER)
    assert not e.check("admin_or_owner", {"project_id": "p2"}, MEMBER)
    assert e.check("admin_or_owner", {"project_id": "p2"}, ADMIN)
    assert e.check("nested", {"project_id": "p1"}, MEMBER)
    assert not e.check("dangling_only", {}, ADMIN)


@pytest.mark.parametrize(
    "rules",
    [
        {"a": "rule:a"},
        {"a": "rule:b", "b": "role:x or rule:c", "c": "not rule:a"},
    ],
)
def test_reference_loops_are_refused(rules: dict[str, str]) -> None:
    e = PolicyEngine()
    with pytest.raises(PolicyError, match="loop"):
        e.register_defaults(rules)
    assert e.rules() == {}
    assert not e.check("a", {}, ADMIN)


def test_unknown_rule_uses_default_else_refuses() -> None:
    e = engine(known="role:member")
    assert not e.check("unknown", {}, MEMBER)
    e.register_defaults({"default": "role:member"})
    assert e.check("unknown", {}, MEMBER)
    assert not e.check("unknown", {}, ADMIN)
    assert e.rules() == {"known": "role:member", "default": "role:member"}


def test_later_defaults_override_earlier() -> None:
    e = engine(a="!", b="@")
    e.register_defaults({"a": "@"})
    assert e.check("a", {}, {}) and e.check("b", {}, {})


@pytest.mark.parametrize(
    "rule",
    ["(", ")", "role:a)", "(role:a", "()", "and", "role:a and", "or role:a", "not", "a:b c:d", "'unclosed:x"],
)
def test_syntax_errors(rule: str) -> None:
    with pytest.raises(PolicyError):
        PolicyEngine().register_defaults({"r": rule})


@pytest.mark.parametrize("rule", ["http://example.com/x", "https:x", "justaword", "role:", "rule:", "-bad:x"])
def test_unsupported_checks_refuse_with_a_warning(rule: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="tinystack.core.policy"):
        compile_rule.cache_clear()
        e = engine(r=f"{rule} or !")
    assert "Unsupported policy check" in caplog.text
    assert not e.check("r", {"y": "z"}, ADMIN)


def test_rules_are_parsed_once() -> None:
    compile_rule.cache_clear()
    e = engine(a="role:member", b="role:member", c="rule:a")
    for _ in range(10):
        e.check("a", {}, MEMBER)
        e.check("c", {}, MEMBER)
    info = compile_rule.cache_info()
    assert info.misses == 2


def test_enforce() -> None:
    e = engine(admin="role:admin")
    e.enforce("admin", {}, ADMIN)
    with pytest.raises(PolicyNotAuthorized) as info:
        e.enforce("admin", {}, MEMBER)
    assert str(info.value) == "Policy doesn't allow admin to be performed."
    assert isinstance(info.value, Forbidden) and info.value.status == 403


def write(path: pathlib.Path, text: str) -> None:
    path.write_text(text)
    # Make sure the change is visible even on filesystems with coarse mtimes.
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9 * (1 + int(time.time()) % 7)))


def test_policy_file_overrides_reloads_and_falls_back(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "policy.yaml"
    write(path, '"compute:create": "role:admin"\n')
    e = PolicyEngine(path, reload_interval=0)
    e.register_defaults({"compute:create": "role:member", "compute:delete": "role:member"})
    assert e.rules() == {"compute:create": "role:admin", "compute:delete": "role:member"}
    assert not e.check("compute:create", {}, MEMBER)
    assert e.check("compute:delete", {}, MEMBER)

    write(path, '{"compute:create": "@", "compute:delete": "role:reader and not role:member"}')
    assert e.check("compute:create", {}, {})
    assert not e.check("compute:delete", {}, MEMBER)

    path.unlink()
    assert e.check("compute:create", {}, MEMBER)
    assert not e.check("compute:create", {}, ADMIN)
    assert e.rules() == {"compute:create": "role:member", "compute:delete": "role:member"}

    write(path, "compute:create: '!'\n")
    assert not e.check("compute:create", {}, MEMBER)


@pytest.mark.parametrize(
    "bad",
    [
        "compute:create: [unclosed\n",
        "compute:create: 'role:admin and'\n",
        "- a list\n- not a mapping\n",
        "compute:create:\n",
        "compute:create: rule:loop\nloop: rule:compute:create\n",
    ],
)
def test_malformed_policy_file_keeps_previous_rules(
    tmp_path: pathlib.Path, bad: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "policy.yaml"
    write(path, "compute:create: role:admin\n")
    e = PolicyEngine(path, reload_interval=0)
    e.register_defaults({"compute:create": "role:member"})
    assert e.check("compute:create", {}, ADMIN)

    with caplog.at_level(logging.ERROR, logger="tinystack.core.policy"):
        write(path, bad)
        assert e.check("compute:create", {}, ADMIN)
        assert not e.check("compute:create", {}, MEMBER)
    assert "invalid" in caplog.text
    assert e.rules() == {"compute:create": "role:admin"}

    write(path, "compute:create: '@'\n")
    assert e.check("compute:create", {}, MEMBER)


def test_missing_or_empty_policy_file_means_defaults(tmp_path: pathlib.Path) -> None:
    e = PolicyEngine(tmp_path / "absent.yaml", reload_interval=0)
    e.register_defaults({"a": "role:member"})
    assert e.check("a", {}, MEMBER)
    write(tmp_path / "absent.yaml", "")
    assert e.check("a", {}, MEMBER)


def test_reload_interval_limits_stat_calls(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "policy.yaml"
    write(path, "a: '!'\n")
    e = PolicyEngine(path, reload_interval=3600)
    e.register_defaults({"a": "@"})
    write(path, "a: '@'\n")
    assert not e.check("a", {}, {})  # not re-read until the interval has passed


def test_defaults_that_loop_with_the_file_drop_the_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "policy.yaml"
    write(path, "b: rule:a\n")
    e = PolicyEngine(path, reload_interval=0)
    e.register_defaults({"b": "@"})
    assert e.rules() == {"b": "rule:a"}
    e.register_defaults({"a": "rule:b"})  # valid alone, but loops with the file's override of b
    assert e.rules() == {"a": "rule:b", "b": "@"}
    assert e.check("a", {}, {})
