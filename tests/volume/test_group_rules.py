"""The rules of generic volume groups that need no cloud: how a group or group snapshot follows its members'
statuses, how ``add_volumes``/``remove_volumes`` are read, which group spec keys are refused."""

from __future__ import annotations

from typing import Any, cast

import pytest
from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.volume.group_types import check_keys
from tinystack.volume.groups import Groups, split_ids
from tinystack.volume.models import Group, GroupSnapshot


class Recorder:
    """The one Session call ``_settle`` makes."""

    def __init__(self) -> None:
        self.deleted: list[Any] = []

    def delete(self, row: Any) -> None:
        self.deleted.append(row)


def settle(status: str, members: list[str], owner: type[Group | GroupSnapshot] = Group) -> tuple[str, bool]:
    row = owner(id="g", status=status)
    s = Recorder()
    Groups._settle(cast(Session, s), row, members, "error")
    return row.status, row in s.deleted


@pytest.mark.parametrize(("status", "members", "want"), [
    ("creating", ["available", "available"], ("available", False)),
    ("creating", ["available", "in-use"], ("available", False)),
    ("creating", ["available", "creating"], ("creating", False)),
    ("creating", ["creating", "error"], ("error", False)),
    ("deleting", ["deleting"], ("deleting", False)),
    ("deleting", ["deleting", "error_deleting"], ("error_deleting", False)),
    ("deleting", [], ("deleting", True)),
    # A group that is neither being made nor deleted does not move with its members.
    ("available", ["error"], ("available", False)),
    ("available", [], ("available", False)),
    ("error", ["available"], ("error", False)),
])
def test_group_follows_members(status: str, members: list[str], want: tuple[str, bool]) -> None:
    assert settle(status, members) == want
    assert settle(status, members, GroupSnapshot) == want


def test_group_from_source_waits_for_every_member() -> None:
    """create-from-src makes the members one by one: the first one ready must not make the group available."""
    row, s = Group(id="g", status="creating"), Recorder()
    Groups._settle(cast(Session, s), row, ["available"], "error", expected=2)
    assert row.status == "creating"
    Groups._settle(cast(Session, s), row, ["available", "available"], "error", expected=2)
    assert row.status == "available"


def test_volume_id_lists() -> None:
    assert split_ids("a, b,,c ") == ["a", "b", "c"]
    assert split_ids("") == [] and split_ids(None) == []


def test_group_spec_keys() -> None:
    check_keys(["consistent_group_snapshot_enabled", "a.b:c-d"])
    for bad in (["has space"], ["slash/"], [""], ["ok", "bad!"]):
        with pytest.raises(errors.BadRequest):
            check_keys(bad)
