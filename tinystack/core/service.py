"""What every service object shares: sessions on its database, writes off the event loop retried on
transient database errors, policy checks, the admin context acting for a caller, and the late lookup of
the other services (``Runtime.services``). A service class inherits ``ServiceBase``; core imports no service."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar, Generic, ParamSpec, TypeVar, overload

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from tinystack.core import errors, log
from tinystack.core.auth import RequestContext
from tinystack.core.db import Database
from tinystack.core.policy import PolicyEngine

logger = logging.getLogger(__name__)
T = TypeVar("T")
P = ParamSpec("P")
Iface = TypeVar("Iface")  # a service interface (a Protocol)

# The roles the hand-built service contexts always carried: admin for the rule, member and reader so that
# rules written as "role:member" (not "rule:admin_or_owner") pass too.
ADMIN_ROLES = ("admin", "member", "reader")

# What SQLite, PostgreSQL and MySQL/MariaDB say when another transaction held the lock or won a serialization
# race: the same transaction run again may well succeed.
_TRANSIENT = ("database is locked", "database table is locked", "busy", "deadlock", "could not serialize",
              "lock wait timeout")


def transient(exc: BaseException) -> bool:
    """Whether running the failed transaction again may succeed (a lock, a deadlock, a dropped connection)."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError) and any(word in str(exc).lower() for word in _TRANSIENT)


def elevated(ctx: RequestContext) -> RequestContext:
    """``ctx`` with admin rights: the same user, project and request, for the steps a service takes on a
    caller's behalf that its policy reserves to admins (binding a port to a host, for instance)."""
    rid = ctx.request_id or log.request_id.get()
    return dataclasses.replace(ctx, roles=tuple(dict.fromkeys((*ctx.roles, *ADMIN_ROLES))),
                               request_id=rid if rid != "-" else None)


def acting_for(user_id: str, project_id: str | None) -> RequestContext:
    """An admin context for work no request carries (the conductor, the metadata API) done for a resource's
    owner: ports and volumes it creates belong to that user and project."""
    return elevated(RequestContext(user_id=user_id, project_id=project_id))


class ServiceKey(Generic[Iface]):
    """A service's name in the registry, typed by the ``Protocol`` its callers use (``<service>/interface.py``):
    ``ServiceBase.service(KEY)`` then gives an object mypy checks each call against."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"ServiceKey({self.name!r})"


class ServiceBase:
    """The shared half of a service object. ``services`` is the cloud's registry, read on each lookup so a
    service registered after this one is found too."""

    # How often ``write`` runs a transaction that failed transiently before the error reaches the caller.
    write_attempts: ClassVar[int] = 8

    def __init__(self, db: Database, policy: PolicyEngine, services: Mapping[str, Any] | None = None) -> None:
        self.db = db
        self.policy = policy
        self.services: Mapping[str, Any] = services if services is not None else {}

    # --- the database -----------------------------------------------------------------------------

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back when it raises."""
        with self.db.session() as s:
            yield s

    def retrying(self, fn: Callable[[Session], T], attempts: int | None = None) -> T:
        """Run ``fn`` in a transaction on this thread, again (a fresh session, a short random pause) while it
        fails with a transient error; ``fn`` must re-read what it decides on, since each attempt starts over."""
        tries = attempts or self.write_attempts
        for attempt in range(1, tries + 1):
            try:
                with self.session() as s:
                    return fn(s)
            except DBAPIError as exc:
                if attempt == tries or not self.retry_on(exc):
                    raise
                logger.debug("transaction failed transiently (attempt %d of %d): %s", attempt, tries, exc)
                # Random, growing pauses so two writers that collided do not collide again in step.
                time.sleep(random.uniform(0.001, 0.005 * attempt))
        raise AssertionError("unreachable")

    def retry_on(self, exc: DBAPIError) -> bool:
        """Whether ``retrying`` runs a transaction that failed with ``exc`` again (a service whose writers race
        on unique keys, networking's IP allocations for instance, retries those too)."""
        return transient(exc)

    async def write(self, fn: Callable[[Session], T], attempts: int | None = None) -> T:
        """``retrying`` in a worker thread: a handler awaits the write without stalling the event loop (the
        thread keeps the request id of the log context)."""
        return await asyncio.to_thread(self.retrying, fn, attempts)

    async def read(self, fn: Callable[[Session], T]) -> T:
        """``fn`` in one transaction in a worker thread, for reads a handler awaits (no retry: a read that
        fails reports it)."""
        def run() -> T:
            with self.session() as s:
                return fn(s)

        return await asyncio.to_thread(run)

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """A synchronous rule that opens its own transactions (``session``/``retrying``), in a worker thread:
        what a handler awaits when the rule is more than one read or one write."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    # --- policy -----------------------------------------------------------------------------------

    def allowed(self, ctx: RequestContext, rule: str, target: Mapping[str, Any] | None = None) -> bool:
        """Whether policy lets ``ctx`` do ``rule`` on ``target`` (by default: the caller's own project)."""
        return self.policy.check(rule, self._target(ctx, target), ctx.creds())

    def enforce(self, ctx: RequestContext, rule: str, target: Mapping[str, Any] | None = None) -> None:
        """``allowed`` or raise ``PolicyNotAuthorized`` (403)."""
        self.policy.enforce(rule, self._target(ctx, target), ctx.creds())

    @staticmethod
    def _target(ctx: RequestContext, target: Mapping[str, Any] | None) -> Mapping[str, Any]:
        return target if target is not None else {"project_id": ctx.project_id}

    @staticmethod
    def elevated(ctx: RequestContext) -> RequestContext:
        return elevated(ctx)

    # --- other services ---------------------------------------------------------------------------

    @overload
    def service(self, name: ServiceKey[Iface]) -> Iface: ...

    @overload
    def service(self, name: str) -> Any: ...

    def service(self, name: str | ServiceKey[Any]) -> Any:
        """Another service's object, typed by its interface when asked by key; 503 when this cloud does not
        run it."""
        key = name.name if isinstance(name, ServiceKey) else name
        svc = self.services.get(key)
        if svc is None:
            raise errors.ServiceUnavailable(f"The {key} service is not available in this cloud.")
        return svc

    def has(self, name: str | ServiceKey[Any]) -> bool:
        return (name.name if isinstance(name, ServiceKey) else name) in self.services
