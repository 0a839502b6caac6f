"""The identity service: the one object other services and the API use. It owns the database session
discipline (every write bumps the token generation) and wires tokens, authentication and policy."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from tinystack.config import Config
from tinystack.core.auth import RequestContext
from tinystack.core.db import Database
from tinystack.core.policy import PolicyEngine
from tinystack.identity import policies
from tinystack.identity.authn import Authenticator, Lockout
from tinystack.identity.fernet import KeyRepository, TokenFormatter
from tinystack.identity.tokens import TokenService

MIGRATIONS = Path(__file__).parent / "migrations"


class IdentityService:
    def __init__(self, config: Config, db: Database, policy: PolicyEngine) -> None:
        self.config = config
        self.db = db
        self.policy = policy
        policy.register_defaults(policies.DEFAULTS)
        key_dir = config.get("fernet_tokens", "key_repository") or str(config.state_dir / "fernet-keys")
        self.keys = KeyRepository(Path(key_dir), config.get_int("fernet_tokens", "max_active_keys"))
        self.keys.setup()
        self.lifetime = config.get_int("token", "expiration")
        self.hash_rounds = config.get_int("identity", "password_hash_rounds")
        self.tokens = TokenService(db, TokenFormatter(self.keys), self.lifetime, config.get_int("token", "cache_size"))
        lockout = Lockout(config.get_int("security_compliance", "lockout_failure_attempts"),
                          float(config.get("security_compliance", "lockout_duration")))
        self.authenticator = Authenticator(db, self.tokens, self.lifetime, lockout)
        self.on_change: list[Callable[[], None]] = []

    @contextlib.contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that changes identity data; cached token validations are dropped after it."""
        try:
            with self.db.session() as s:
                yield s
        finally:
            self.changed()

    def changed(self) -> None:
        self.tokens.changed()
        for hook in self.on_change:
            hook()

    def read(self) -> contextlib.AbstractContextManager[Session]:
        return self.db.session()

    def validate(self, token: str) -> RequestContext:
        """The token validator every service's web layer uses."""
        return self.tokens.context(token)

    def enforce(self, ctx: RequestContext, rule: str, target: dict[str, Any] | None = None) -> None:
        self.policy.enforce(rule, target or {}, ctx.creds())

    def allowed(self, ctx: RequestContext, rule: str, target: dict[str, Any] | None = None) -> bool:
        return self.policy.check(rule, target or {}, ctx.creds())
