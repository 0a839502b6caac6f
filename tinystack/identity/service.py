"""The identity service: the one object other services and the API use. It owns the database session
discipline (every write bumps the token generation), wires tokens, authentication and policy, and holds the
per-concept request services the API handlers call (users, resources, assignments, credentials, catalog, auth,
trusts, limits, endpoint filter, domain configuration)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from tinystack.config import Config
from tinystack.core.auth import RequestContext
from tinystack.core.db import Database
from tinystack.core.policy import PolicyEngine
from tinystack.core.service import ServiceBase
from tinystack.identity import policies
from tinystack.identity.assignment_ops import Assignments
from tinystack.identity.auth_ops import Auth
from tinystack.identity.authn import Authenticator, Lockout
from tinystack.identity.catalog_ops import CatalogAdmin
from tinystack.identity.credential_ops import Credentials
from tinystack.identity.domain_config_ops import DomainConfigs
from tinystack.identity.endpoint_filter_ops import EndpointFilter
from tinystack.identity.fernet import KeyRepository, TokenFormatter
from tinystack.identity.limit_ops import Limits
from tinystack.identity.password_rules import PasswordRules
from tinystack.identity.resource_ops import Resources
from tinystack.identity.tokens import TokenService
from tinystack.identity.trust_ops import Trusts
from tinystack.identity.user_ops import Users

MIGRATIONS = Path(__file__).parent / "migrations"
T = TypeVar("T")


class IdentityService(ServiceBase):
    def __init__(self, config: Config, db: Database, policy: PolicyEngine) -> None:
        super().__init__(db, policy)
        self.config = config
        policy.register_defaults(policies.DEFAULTS)
        key_dir = config.get("fernet_tokens", "key_repository") or str(config.state_dir / "fernet-keys")
        self.keys = KeyRepository(Path(key_dir), config.get_int("fernet_tokens", "max_active_keys"))
        self.keys.setup()
        self.lifetime = config.get_int("token", "expiration")
        self.hash_rounds = config.get_int("identity", "password_hash_rounds")
        self.password_rules = PasswordRules.from_config(config)
        self.tokens = TokenService(db, TokenFormatter(self.keys), self.lifetime, config.get_int("token", "cache_size"))
        lockout = Lockout(config.get_int("security_compliance", "lockout_failure_attempts"),
                          float(config.get("security_compliance", "lockout_duration")))
        self.authenticator = Authenticator(db, self.tokens, self.lifetime, lockout)
        self.on_change: list[Callable[[], None]] = []
        self.auth = Auth(self)
        self.users = Users(self)
        self.resources = Resources(self)
        self.assignments = Assignments(self)
        self.credentials = Credentials(self)
        self.catalog = CatalogAdmin(self)
        self.trusts = Trusts(self)
        self.limits = Limits(self)
        self.endpoint_filter = EndpointFilter(self)
        self.domain_configs = DomainConfigs(self)

    @contextlib.contextmanager
    def changing(self) -> Iterator[Session]:
        """A transaction on this thread that changes identity data; cached token validations are dropped after
        it (bootstrap at start-up uses it; requests use ``write``)."""
        try:
            with self.db.session() as s:
                yield s
        finally:
            self.changed()

    async def write(self, fn: Callable[[Session], T], attempts: int | None = None) -> T:
        """``ServiceBase.write`` (a worker thread, retried on transient errors), then the cached token
        validations are dropped, as after every identity change, back on the event loop."""
        work = asyncio.ensure_future(super().write(fn, attempts))
        # Dropped when the transaction has ended, even if the caller stopped waiting (cancelled) before: a
        # validation cached while it ran must not outlive it. Runs before the caller resumes.
        work.add_done_callback(lambda _: self.changed())
        return await asyncio.shield(work)

    def changed(self) -> None:
        self.tokens.changed()
        for hook in self.on_change:
            hook()

    def validate(self, token: str) -> RequestContext:
        """The token validator every service's web layer uses."""
        return self.tokens.context(token)

    @staticmethod
    def _target(ctx: RequestContext, target: Mapping[str, Any] | None) -> Mapping[str, Any]:
        # Keystone's rules read the target's own attributes (``target.*``), never the caller's project: no
        # target is an empty one.
        return target if target is not None else {}
