"""Desired state that survives many processes and a crash anywhere (design §7).

Two mechanisms:

- ``bump``: a desired-state write moves a row's ``generation`` by compare-and-swap (``UPDATE ... SET generation =
  generation + 1 ... WHERE id = :id AND generation = :g [AND <expected state>]``), never read-modify-write, so two
  API processes writing one row cannot both win with the same generation. The loser retries on fresh state
  (``retry`` + ``Lost``) and, when what it expected no longer holds, answers 409 from its own checks.
- ``Publisher``: level-triggered publishing of desired state to the agents. Its work list is read from the
  database (rows whose ``generation`` is ahead of ``published_generation``), every ``interval`` seconds and at
  start, together with a full per-host sync; enqueueing a key right after a commit is only the fast path. A
  crash between the commit and the bus publish delays a host by one interval and loses nothing.

``before_publish`` is the fault-injection point between the commit and the publish: tests set it to a callable
that raises ``SimulatedCrash`` (the key is dropped from memory, as a dead process would drop it); with
``TINYSTACK_CRASH_BEFORE_PUBLISH=<service>|*`` in the environment the process really dies there.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, false, inspect, or_, update
from sqlalchemy.orm import Session, attributes

from tinystack.core import errors
from tinystack.core.reconcile import DONE, Reconciler, Result

log = logging.getLogger(__name__)

T = TypeVar("T")

# Column name -> the value it must still have, or a tuple of allowed values (None in it means NULL).
Guard = Mapping[str, Any]

CRASH_ENV = "TINYSTACK_CRASH_BEFORE_PUBLISH"
CRASH_EXIT = 86

# Tests set this: called with (service, key) after the commit, before the bus publish.
before_publish: Callable[[str, str], None] | None = None


class Lost(Exception):
    """A compare-and-swap found the row moved on: abandon the transaction and try again on fresh state."""


class SimulatedCrash(Exception):
    """Raised by a ``before_publish`` hook: the publish is abandoned as if the process had died there."""


# --- compare-and-swap ---------------------------------------------------------------------------------


def _key(model: type[Any], ident: Any) -> list[ColumnElement[bool]]:
    columns = inspect(model).primary_key
    values = ident if isinstance(ident, tuple) else (ident,)
    return [c == v for c, v in zip(columns, values, strict=True)]


def _allowed(column: Any, allowed: Any) -> ColumnElement[bool]:
    if isinstance(allowed, tuple | list | set | frozenset):
        values = [v for v in allowed if v is not None]
        clauses: list[ColumnElement[bool]] = [column.in_(values)] if values else []
        if None in allowed:
            clauses.append(column.is_(None))
        return or_(*clauses) if clauses else false()
    return column.is_(None) if allowed is None else column == allowed  # type: ignore[no-any-return]


def bump(s: Session, model: type[Any], ident: Any, generation: int, values: Mapping[str, Any] | None = None,
         guard: Guard | None = None) -> bool:
    """Set ``values`` and move ``generation`` to ``generation + 1`` if the row is still at ``generation`` (and its
    ``guard`` columns still hold the expected values). Returns whether this writer won.

    ``ident`` is the primary key (a tuple for a composite one). Pending changes of the session are flushed first,
    in the same transaction, so a caller may mutate the loaded object and then bump; a loser raises (``Lost``, or
    a 409) so that the whole transaction rolls back. The won values are written into the session's copy of the
    row, which stays usable without a reload."""
    values = dict(values or {})
    stmt = (update(model).where(*_key(model, ident), model.generation == generation,
                                *(_allowed(getattr(model, name), want) for name, want in (guard or {}).items()))
            .values(generation=model.generation + 1, **values)
            .execution_options(synchronize_session=False))
    won = bool(s.execute(stmt).rowcount == 1)  # type: ignore[attr-defined]
    if won:
        obj = s.identity_map.get(s.identity_key(model, ident))
        if obj is not None:
            for name, value in {**values, "generation": generation + 1}.items():
                attributes.set_committed_value(obj, name, value)
    return won


def bump_or_lose(s: Session, model: type[Any], ident: Any, generation: int,
                 values: Mapping[str, Any] | None = None, guard: Guard | None = None) -> int:
    """``bump``, raising ``Lost`` when another writer won; returns the new generation."""
    if not bump(s, model, ident, generation, values, guard):
        raise Lost(f"{model.__name__} {ident} moved past generation {generation}")
    return generation + 1


def retry(fn: Callable[[], T], attempts: int = 8, what: str = "The resource") -> T:
    """Run ``fn`` (one transaction) again while it loses a compare-and-swap: each attempt re-reads the row, so
    its own state checks answer 409 when what it expects no longer holds."""
    for _ in range(attempts):
        try:
            return fn()
        except Lost:
            continue
    raise errors.Conflict(f"{what} is being changed by another request; try again.")


def mark_published(s: Session, model: type[Any], ident: Any, generation: int,
                   values: Mapping[str, Any] | None = None) -> bool:
    """Record that ``generation`` went out on the bus; a publish of an older generation finishing late never
    overwrites the mark of a newer one."""
    stmt = (update(model).where(*_key(model, ident), model.published_generation < generation)
            .values(published_generation=generation, **dict(values or {}))
            .execution_options(synchronize_session=False))
    return bool(s.execute(stmt).rowcount == 1)  # type: ignore[attr-defined]


def ahead(model: type[Any]) -> ColumnElement[bool]:
    """The publisher's work list: rows whose desired state has not gone out yet."""
    return model.generation > model.published_generation  # type: ignore[no-any-return]


# --- the fault-injection point ------------------------------------------------------------------------


def fault_point(service: str, key: str) -> None:
    """Between the commit and the bus publish: where a crash must lose nothing."""
    hook = before_publish
    if hook is not None:
        hook(service, key)
    target = os.environ.get(CRASH_ENV)
    if target and target in (service, "*"):
        log.critical("%s: %s set; dying before publishing %s", service, CRASH_ENV, key)
        os._exit(CRASH_EXIT)


# --- the level-triggered publisher ---------------------------------------------------------------------

PublishFn = Callable[[str], Awaitable[None]]
PendingFn = Callable[[], Awaitable[Iterable[str]]]
SyncFn = Callable[[], Awaitable[None]]


class Publisher:
    """Publishes keys from the database work list (``pending``) and from ``enqueue`` (the fast path), and runs
    ``sync`` (a full per-host sync) every ``interval`` seconds and at start.

    ``publish(key)`` reads the row, publishes its messages and records ``published_generation``; it raises to be
    retried with backoff. One key is published by one worker at a time (``Reconciler``)."""

    def __init__(self, service: str, publish: PublishFn, pending: PendingFn, sync: SyncFn | None = None,
                 interval: float = 30.0, workers: int = 2) -> None:
        self.service = service
        self._publish = publish
        self._pending = pending
        self._sync = sync
        self.reconciler = Reconciler(f"{service}-publisher", self._run, self._pass, resync_interval=interval,
                                     workers=workers)
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self.reconciler.start()

    async def stop(self) -> None:
        await self.reconciler.stop(grace=5.0)

    def enqueue(self, key: str) -> None:
        """The fast path: publish ``key`` now (its row is committed); the work list covers a lost hint."""
        self.reconciler.enqueue(key)

    def enqueue_threadsafe(self, key: str) -> None:
        """``enqueue`` from any thread: the services' rules run in worker threads, the queue is the loop's."""
        loop = self._loop
        if loop is None or _running_on(loop):
            self.enqueue(key)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(self.enqueue, key)

    async def publish_now(self, key: str) -> None:
        """Publish ``key`` inline, for callers that order their own messages after it."""
        await self._run(key)

    async def wait_idle(self) -> None:
        await self.reconciler.wait_idle()

    async def _pass(self) -> Iterable[str]:
        if self._sync is not None:
            try:
                await self._sync()
            except Exception:
                log.exception("%s publisher: the periodic sync failed", self.service)
        return await self._pending()

    async def _run(self, key: str) -> Result:
        try:
            fault_point(self.service, key)
            await self._publish(key)
        except SimulatedCrash:
            log.warning("%s publisher: simulated crash before publishing %s; the next pass publishes it",
                        self.service, key)
        return DONE


def _running_on(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:  # a worker thread
        return False
