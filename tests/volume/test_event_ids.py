"""Rules without a cloud: user-message event ids and texts, transfer key hashing, retype's backend check."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from tinystack.volume.messages import ACTIONS, DETAILS, user_message
from tinystack.volume.retype import Retype
from tinystack.volume.transfers import digest

pytestmark = pytest.mark.unit


def test_user_message_from_event_ids() -> None:
    assert user_message("VOLUME_VOLUME_002_021") == "attach volume: Failed to attach volume."
    assert user_message("VOLUME_VOLUME_SNAPSHOT_009_013") == "create snapshot: Snapshot failed to create."
    # Unknown parts fall back as Cinder's do.
    assert user_message("VOLUME_VOLUME_999_999") == "unknown action: An unknown error occurred."


def test_action_and_detail_ids_are_unique_three_digit_codes() -> None:
    for table in (ACTIONS, DETAILS):
        ids = [code for code, _ in table.values()]
        assert len(set(ids)) == len(ids) and all(len(c) == 3 and c.isdigit() for c in ids)


def test_transfer_key_hash_is_salted() -> None:
    assert digest("a", "key") != digest("b", "key")
    assert digest("a", "key") == digest("a", "key") and "key" not in digest("a", "key")


def test_retype_serves_types_of_its_own_backend_only() -> None:
    svc: Any = SimpleNamespace(settings=SimpleNamespace(backend_name="file"))
    retype = Retype(svc)
    kind: Any = SimpleNamespace
    assert retype.served(kind(extra_specs={}))
    assert retype.served(kind(extra_specs={"volume_backend_name": "file"}))
    assert not retype.served(kind(extra_specs={"volume_backend_name": "ceph"}))
