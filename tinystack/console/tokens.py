"""Console tokens: random, kept only as a hash, bound to one instance and one console type, expiring, and
consumed once by a compare-and-swap, so two connections racing with one token cannot both win."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from tinystack.console.models import ConsoleToken

# A token that was used or expired stays this long, then the next issue removes it (kept a while for the log).
KEEP_SPENT = 3600


@dataclass(frozen=True)
class Grant:
    """What a consumed token opens."""

    instance_id: str
    console_type: str


class TokenRefused(Exception):
    """The token is unknown, expired or already used (the proxy does not say which)."""


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def issue(s: Session, instance_id: str, console_type: str, ttl: float, now: float) -> str:
    """A new token for ``instance_id``'s ``console_type`` console, valid for ``ttl`` seconds from ``now``."""
    token = secrets.token_urlsafe(32)
    s.execute(delete(ConsoleToken).where(ConsoleToken.expires < int(now) - KEEP_SPENT))
    s.add(ConsoleToken(token_hash=digest(token), instance_id=instance_id, console_type=console_type,
                       expires=int(now + ttl), created_at=_utcnow()))
    return token


def consume(s: Session, token: str, now: float) -> Grant:
    """Spend ``token``: the one caller whose update marks it used gets its grant; every other is refused."""
    if not token or len(token) > 256:
        raise TokenRefused()
    h = digest(token)
    won = s.execute(update(ConsoleToken)
                    .where(ConsoleToken.token_hash == h, ConsoleToken.used_at.is_(None),
                           ConsoleToken.expires > int(now))
                    .values(used_at=_utcnow())
                    .execution_options(synchronize_session=False))
    if won.rowcount != 1:  # type: ignore[attr-defined]
        raise TokenRefused()
    row = s.execute(select(ConsoleToken.instance_id, ConsoleToken.console_type)
                    .where(ConsoleToken.token_hash == h)).one()
    return Grant(row.instance_id, row.console_type)

