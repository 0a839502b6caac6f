"""Keystone's password rules from ``[security_compliance]``: the format (``password_regex``), history
(``unique_last_password_count``), expiry (``password_expires_days``, ``change_password_upon_first_use``) and
``minimum_password_age``. Refusals carry Keystone's messages. The history check is bcrypt work: callers run
``reused`` off the event loop."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tinystack.config import Config
from tinystack.core import errors
from tinystack.identity.models import PasswordHistory
from tinystack.identity.passwords import check_secret

DAY = 86400.0
# History kept per user beyond what the rule needs, so raising the count later still finds recent passwords.
_KEEP = 24


@dataclass(frozen=True)
class PasswordRules:
    regex: re.Pattern[str] | None = None
    regex_description: str = ""
    unique_last: int = 0
    expires_days: int = 0
    minimum_age_days: int = 0
    change_upon_first_use: bool = False

    @classmethod
    def from_config(cls, config: Config) -> PasswordRules:
        section = "security_compliance"
        pattern = config.get(section, "password_regex")
        return cls(regex=re.compile(pattern) if pattern else None,
                   regex_description=config.get(section, "password_regex_description"),
                   unique_last=config.get_int(section, "unique_last_password_count"),
                   expires_days=config.get_int(section, "password_expires_days"),
                   minimum_age_days=config.get_int(section, "minimum_password_age"),
                   change_upon_first_use=config.get_bool(section, "change_password_upon_first_use"))

    def check_format(self, password: str) -> None:
        if self.regex is not None and not self.regex.match(password):
            detail = self.regex_description or f"it must match {self.regex.pattern}"
            raise errors.BadRequest(f"The password does not match the requirements: {detail}.")

    def expires_at(self, options: Mapping[str, Any], now: float, self_service: bool) -> float | None:
        """When a password set now expires: at once when an administrator set it and the user must choose
        their own at first use, else after ``password_expires_days``."""
        if not self_service and self.change_upon_first_use and not options.get("ignore_change_password_upon_first_use"):
            return now
        if self.expires_days > 0 and not options.get("ignore_password_expiry"):
            return now + self.expires_days * DAY
        return None

    def check_age(self, last: PasswordHistory | None, now: float) -> None:
        """A password the user chose must be kept ``minimum_password_age`` days; one an administrator set may
        be changed at once."""
        if self.minimum_age_days <= 0 or last is None or not last.self_service:
            return
        until = last.created_at + self.minimum_age_days * DAY
        if now < until:
            raise errors.BadRequest(
                "You cannot change your password at this time due to the minimum password age. Once you change "
                f"your password, it must be used for {self.minimum_age_days} day(s) before it can be changed. "
                f"Please try again in {int((until - now) // DAY)} day(s) or contact your administrator to reset "
                "your password.")

    def history_error(self) -> errors.BadRequest:
        return errors.BadRequest(
            "The new password cannot be identical to a previous password. The total number which includes the new "
            f"password must be unique is {self.unique_last}.")

    @staticmethod
    def reused(password: str, hashes: Sequence[str]) -> bool:
        """Whether ``password`` is one of ``hashes`` (bcrypt: run in a worker thread)."""
        return any(check_secret(password, h) for h in hashes)


def recent_hashes(s: Session, user_id: str, current: str | None, count: int) -> list[str]:
    """The user's last ``count`` passwords, the current one included (also for users from before the history)."""
    if count <= 0:
        return []
    rows = list(s.scalars(select(PasswordHistory.password_hash).where(PasswordHistory.user_id == user_id)
                          .order_by(PasswordHistory.id.desc()).limit(count)))
    if current and current not in rows:
        rows = [current, *rows][:count]
    return rows


def last_entry(s: Session, user_id: str) -> PasswordHistory | None:
    return s.scalar(select(PasswordHistory).where(PasswordHistory.user_id == user_id)
                    .order_by(PasswordHistory.id.desc()).limit(1))


def record(s: Session, user_id: str, password_hash: str, self_service: bool, now: float | None = None) -> None:
    s.add(PasswordHistory(user_id=user_id, password_hash=password_hash, created_at=now or time.time(),
                          self_service=self_service))
    s.flush()
    old = list(s.scalars(select(PasswordHistory.id).where(PasswordHistory.user_id == user_id)
                         .order_by(PasswordHistory.id.desc()).offset(_KEEP)))
    if old:
        s.execute(delete(PasswordHistory).where(PasswordHistory.id.in_(old)))
