"""Server-side sessions: the browser holds only a random id in an HttpOnly, SameSite cookie; the token, the
user's scope and the CSRF secret stay here. A login gets a new id (no fixation); logout forgets it."""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

COOKIE = "tinystack_dashboard"
# Pages idle longer than this need a new login, even when the token would still be valid.
IDLE_SECONDS = 3600
MAX_SESSIONS = 10000


@dataclass
class Session:
    id: str
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    token: str = ""
    # The login's unscoped token: project tokens are made from it (switching projects), and revoking it at
    # logout revokes every token made from it.
    unscoped: str = ""
    expires: float = 0.0  # the token's expiry, epoch seconds
    user_id: str = ""
    user_name: str = ""
    domain_name: str = ""
    project_id: str = ""
    project_name: str = ""
    roles: list[str] = field(default_factory=list)
    urls: dict[str, str] = field(default_factory=dict)
    projects: list[dict[str, Any]] = field(default_factory=list)
    flashes: list[tuple[str, str]] = field(default_factory=list)
    # Short-lived look-ups for this user and project (see views.common.cached): key -> (monotonic time, value).
    cache: dict[str, tuple[float, Any]] = field(default_factory=dict)
    touched: float = field(default_factory=time.time)

    @property
    def logged_in(self) -> bool:
        return bool(self.token) and self.expires > time.time()

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    def flash(self, kind: str, message: str) -> None:
        self.flashes.append((kind, message))

    def take_flashes(self) -> list[tuple[str, str]]:
        out, self.flashes = self.flashes, []
        return out

    def csrf_ok(self, offered: str | None) -> bool:
        return bool(offered) and hmac.compare_digest(self.csrf, str(offered))


class SessionStore:
    """Sessions in this process's memory, oldest dropped first when full."""

    def __init__(self, max_sessions: int = MAX_SESSIONS, idle: float = IDLE_SECONDS) -> None:
        self._items: OrderedDict[str, Session] = OrderedDict()
        self.max_sessions = max_sessions
        self.idle = idle

    def __len__(self) -> int:
        return len(self._items)

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        sess = self._items.get(sid)
        if sess is None:
            return None
        now = time.time()
        if now - sess.touched > self.idle or (sess.token and sess.expires <= now):
            del self._items[sid]
            return None
        sess.touched = now
        self._items.move_to_end(sid)
        return sess

    def new(self) -> Session:
        sess = Session(secrets.token_urlsafe(32))
        self._items[sess.id] = sess
        while len(self._items) > self.max_sessions:
            self._items.popitem(last=False)
        return sess

    def renew(self, old: Session) -> Session:
        """The same session under a new id and CSRF secret (after a login or a change of scope)."""
        self.drop(old)
        fresh = self.new()
        fresh.flashes = old.flashes
        return fresh

    def drop(self, sess: Session) -> None:
        self._items.pop(sess.id, None)
