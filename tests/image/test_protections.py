"""Property protection rules: first matching regex wins, roles or policies, '@' and '!'."""

from __future__ import annotations

import pytest

from tinystack.image.protections import PropertyProtections, ProtectionConfigError

RULES = """\
[^x_owner_.*]
create = admin,member
read = admin,member
update = admin
delete = !

[^x_public_.*]
create = admin
read = @
update = admin
delete = admin

[.*]
create = @
read = @
update = @
delete = @
"""
MEMBER = {"roles": ["member", "reader"]}
ADMIN = {"roles": ["Admin"]}
READER = {"roles": ["reader"]}


def test_roles_format() -> None:
    rules = PropertyProtections.from_text(RULES)
    assert rules.allowed("x_owner_foo", "create", MEMBER)
    assert not rules.allowed("x_owner_foo", "update", MEMBER)
    assert rules.allowed("x_owner_foo", "update", ADMIN)  # role names compare case-insensitively
    assert not rules.allowed("x_owner_foo", "delete", ADMIN)
    assert not rules.allowed("x_owner_foo", "read", READER)
    assert rules.allowed("x_public_foo", "read", READER)
    assert rules.allowed("anything", "delete", READER)


def test_unmatched_property_is_refused() -> None:
    rules = PropertyProtections.from_text("[^hw_.*]\ncreate = @\nread = @\nupdate = @\ndelete = @\n")
    assert rules.allowed("hw_disk_bus", "create", READER)
    assert not rules.allowed("os_distro", "read", ADMIN)


def test_policies_format() -> None:
    seen = []

    def check(rule: str, creds: object) -> bool:
        seen.append(rule)
        return rule == "billing_admin"

    text = "[^x_billing_.*]\ncreate = billing_admin\nread = @\nupdate = nobody\ndelete = !\n"
    rules = PropertyProtections.from_text(text, "policies", check)
    assert rules.allowed("x_billing_code", "create", MEMBER)
    assert not rules.allowed("x_billing_code", "update", MEMBER)
    assert rules.allowed("x_billing_code", "read", MEMBER)
    assert seen == ["billing_admin", "nobody"]


@pytest.mark.parametrize("text", [
    "[^x.*]\ncreate = @\nread = @\nupdate = @\n",
    "[(unclosed]\ncreate = @\nread = @\nupdate = @\ndelete = @\n",
    "[x]\ncreate = @,!\nread = @\nupdate = @\ndelete = @\n",
    "not an ini file",
])
def test_malformed_files(text: str) -> None:
    with pytest.raises(ProtectionConfigError):
        PropertyProtections.from_text(text)


def test_missing_file(tmp_path: object) -> None:
    from pathlib import Path

    with pytest.raises(ProtectionConfigError):
        PropertyProtections.from_file(Path("/nonexistent/protections.conf"))
