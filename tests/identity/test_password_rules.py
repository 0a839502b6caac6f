"""``[security_compliance]`` password rules on a cloud of their own (regex, history, expiry, change upon first
use, lockout) through the openstack CLI and raw HTTP, and the rules that need a clock as unit tests."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.livecloud import LiveCloud
from tinystack.core import errors
from tinystack.identity.models import PasswordHistory
from tinystack.identity.password_rules import DAY, PasswordRules

RULES = {"security_compliance__password_regex": r"^(?=.*\d)(?=.*[a-zA-Z]).{8,}$",
         "security_compliance__password_regex_description": "at least 8 characters, a letter and a digit",
         "security_compliance__unique_last_password_count": "2",
         "security_compliance__password_expires_days": "30",
         "security_compliance__change_password_upon_first_use": "true",
         "security_compliance__lockout_failure_attempts": "2",
         "security_compliance__lockout_duration": "600"}


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCloud]:
    cloud = LiveCloud(Path(tmp_path_factory.mktemp("strict")), **RULES)
    try:
        yield cloud
    finally:
        cloud.stop()


def _token(cloud: LiveCloud, user_id: str, password: str) -> requests.Response:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {"id": user_id,
                                                                                 "password": password}}}}}
    return requests.post(cloud.url("identity") + "/auth/tokens", json=body, timeout=10)


def _change(cloud: LiveCloud, user_id: str, token: str, old: str, new: str) -> requests.Response:
    return requests.post(cloud.url("identity") + f"/users/{user_id}/password", timeout=10,
                         json={"user": {"original_password": old, "password": new}}, headers={"X-Auth-Token": token})


def _admin_token(cloud: LiveCloud) -> str:
    return str(cloud.conn("admin").auth_token)


def _new_user(cloud: LiveCloud, password: str, **options: Any) -> str:
    body = {"user": {"name": f"pw-{uuid.uuid4().hex[:8]}", "domain_id": "default", "password": password,
                     "options": options}}
    made = requests.post(cloud.url("identity") + "/users", json=body, timeout=10,
                         headers={"X-Auth-Token": _admin_token(cloud)})
    assert made.status_code == 201, made.text
    return str(made.json()["user"]["id"])


@pytest.mark.api
def test_first_use_history_and_regex(strict: LiveCloud) -> None:
    user_id = _new_user(strict, "first-pass1")
    # An administrator set the password: it must be changed before the first token.
    expired = _token(strict, user_id, "first-pass1")
    assert expired.status_code == 401
    assert expired.json()["error"]["message"] == f"The password is expired and needs to be changed for user: {user_id}."
    # The self-service change needs no token here (Keystone allows it with an expired password)...
    weak = _change(strict, user_id, "", "first-pass1", "short")
    assert weak.status_code == 400
    assert weak.json()["error"]["message"] == ("The password does not match the requirements: at least 8 characters, "
                                               "a letter and a digit.")
    same = _change(strict, user_id, "", "first-pass1", "first-pass1")
    assert same.status_code == 400 and "must be unique is 2" in same.json()["error"]["message"]
    assert _change(strict, user_id, "", "first-pass1", "second-pass2").status_code == 204
    issued = _token(strict, user_id, "second-pass2")
    assert issued.status_code == 201, issued.text
    expires = issued.json()["token"]["user"]["password_expires_at"]
    assert expires is not None and expires > time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 29 * DAY))
    token = issued.headers["X-Subject-Token"]
    # The last two passwords (the current one included) may not come back; the one before may.
    assert _change(strict, user_id, token, "second-pass2", "first-pass1").status_code == 400
    assert _change(strict, user_id, token, "second-pass2", "third-pass3").status_code == 204
    token = _token(strict, user_id, "third-pass3").headers["X-Subject-Token"]
    assert _change(strict, user_id, token, "third-pass3", "first-pass1").status_code == 204


@pytest.mark.api
def test_cli_password_set_and_admin_reset(strict: LiveCloud, monkeypatch: pytest.MonkeyPatch) -> None:
    user_id = _new_user(strict, "cli-pass1", ignore_change_password_upon_first_use=True)
    shown = strict.cli_json("user", "show", user_id)
    assert shown["password_expires_at"] is not None  # password_expires_days still applies
    for key, value in {"OS_AUTH_URL": strict.url("identity"), "OS_USERNAME": shown["name"], "OS_PASSWORD": "cli-pass1",
                       "OS_USER_DOMAIN_ID": "default", "OS_IDENTITY_API_VERSION": "3",
                       "OS_REGION_NAME": "RegionOne"}.items():
        monkeypatch.setenv(key, value)
    weak = strict.cli("user", "password", "set", "--password", "weak", "--original-password", "cli-pass1", cloud="",
                      check=False)
    assert weak.returncode != 0 and "does not match the requirements" in weak.stderr
    again = strict.cli("user", "password", "set", "--password", "cli-pass1", "--original-password", "cli-pass1",
                       cloud="", check=False)
    assert again.returncode != 0 and "cannot be identical to a previous password" in again.stderr
    strict.cli("user", "password", "set", "--password", "cli-pass2", "--original-password", "cli-pass1", cloud="")
    assert _token(strict, user_id, "cli-pass2").status_code == 201
    monkeypatch.undo()  # back to clouds.yaml's admin
    # An administrator's reset follows the format and history rules too, and expires at once (first use) unless
    # the user is exempt, as this one is.
    bad = strict.cli("user", "set", "--password", "nodigits", user_id, check=False)
    assert bad.returncode != 0 and "does not match the requirements" in bad.stderr
    reused = strict.cli("user", "set", "--password", "cli-pass2", user_id, check=False)
    assert reused.returncode != 0 and "must be unique is 2" in reused.stderr
    strict.cli("user", "set", "--password", "reset-pass9", user_id)
    assert _token(strict, user_id, "reset-pass9").status_code == 201
    other = _new_user(strict, "other-pass1", ignore_change_password_upon_first_use=True)
    # Without the exemption an administrator's reset must be changed before the next token.
    body = {"user": {"password": "reset-pass6", "options": {"ignore_change_password_upon_first_use": False}}}
    patched = requests.patch(strict.url("identity") + f"/users/{other}", json=body, timeout=10,
                             headers={"X-Auth-Token": _admin_token(strict)})
    assert patched.status_code == 200, patched.text
    assert _token(strict, other, "reset-pass6").status_code == 401


@pytest.mark.api
def test_lockout_and_exemption(strict: LiveCloud) -> None:
    user_id = _new_user(strict, "lock-pass1", ignore_change_password_upon_first_use=True)
    for _ in range(2):
        assert _token(strict, user_id, "wrong-pass1").status_code == 401
    locked = _token(strict, user_id, "lock-pass1")
    assert locked.status_code == 401 and "locked" in locked.json()["error"]["message"]
    exempt = _new_user(strict, "lock-pass2", ignore_change_password_upon_first_use=True,
                       ignore_lockout_failure_attempts=True)
    for _ in range(3):
        assert _token(strict, exempt, "wrong-pass1").status_code == 401
    assert _token(strict, exempt, "lock-pass2").status_code == 201


# --- rules that need a clock -----------------------------------------------------------------------


@pytest.mark.unit
def test_minimum_age_binds_only_passwords_the_user_chose() -> None:
    rules = PasswordRules(minimum_age_days=2)
    now = time.time()
    chosen = PasswordHistory(user_id="u", password_hash="h", created_at=now - DAY - 60, self_service=True)
    with pytest.raises(errors.BadRequest, match=r"minimum password age.*Please try again in 0 day"):
        rules.check_age(chosen, now)
    rules.check_age(PasswordHistory(user_id="u", password_hash="h", created_at=now - DAY, self_service=False), now)
    rules.check_age(PasswordHistory(user_id="u", password_hash="h", created_at=now - 3 * DAY, self_service=True), now)
    rules.check_age(None, now)


@pytest.mark.unit
def test_expiry_rules() -> None:
    now = 1000.0
    assert PasswordRules().expires_at({}, now, self_service=False) is None
    days = PasswordRules(expires_days=3)
    assert days.expires_at({}, now, self_service=True) == now + 3 * DAY
    assert days.expires_at({"ignore_password_expiry": True}, now, self_service=True) is None
    first = PasswordRules(change_upon_first_use=True, expires_days=3)
    assert first.expires_at({}, now, self_service=False) == now
    assert first.expires_at({}, now, self_service=True) == now + 3 * DAY
    assert first.expires_at({"ignore_change_password_upon_first_use": True}, now, self_service=False) == now + 3 * DAY
