"""The Fernet payload of a trust-scoped token carries its trust; every other token keeps the payload it had."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tinystack.core import errors
from tinystack.identity.fernet import KeyRepository, TokenFormatter, TokenPayload, new_audit_id

pytestmark = pytest.mark.unit


def _formatter(tmp_path: Path) -> TokenFormatter:
    keys = KeyRepository(tmp_path / "keys")
    keys.setup()
    return TokenFormatter(keys)


def test_trust_id_round_trips_and_plain_tokens_stay_short(tmp_path: Path) -> None:
    fmt = _formatter(tmp_path)
    now = time.time()
    plain = TokenPayload("u1", ("password",), "project", "p1", now, now + 60, (new_audit_id(),))
    trusted = TokenPayload("u1", ("token",), "project", "p1", now, now + 60, (new_audit_id(),), None, "t" * 32)
    assert fmt.decode(fmt.encode(plain)) == plain
    assert fmt.decode(fmt.encode(trusted)) == trusted
    assert len(fmt.encode(plain)) < len(fmt.encode(trusted))


def test_a_payload_with_unknown_fields_is_no_token(tmp_path: Path) -> None:
    import msgpack

    fmt = _formatter(tmp_path)
    packed = msgpack.packb([1, "u", ["password"], "project", "p", 1.0, time.time() + 60, ["a"], None, "t", "extra"])
    token = fmt.keys.fernet().encrypt(packed).decode()
    with pytest.raises(errors.NotFound):
        fmt.decode(token)
