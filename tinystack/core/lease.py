"""Leases in the database, so that work the whole cloud needs done once (sweepers, housekeeping, bootstraps) runs
in one API process at a time however many share the database (design §7).

A lease is a row ``(name, holder, expires_at)`` in ``core_lease``. Taking or renewing it is one conditional
UPDATE (``holder`` is me, or the lease has expired), so two processes can never both succeed; the row is made
by the first taker. Expiry is wall-clock time in milliseconds: the processes' clocks must agree to well within
the lease's time to live, as they must for Nova's service heartbeats. A holder considers the lease its own
only for ``ttl - margin`` after it last renewed, leaving room for that skew.

``Singleton`` runs a periodic coroutine only while its process holds the lease, renewing it meanwhile;
``exclusive`` runs one-off work (a bootstrap) with the lease held, waiting for another holder to finish.
``SINGLETONS`` switches the periodic ones off in the context an ``api``-role process starts its services in:
that work belongs to ``tinystack conductor`` (tinystack/roles.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

from sqlalchemy import BigInteger, Column, MetaData, String, Table, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from tinystack.core.db import NAMING, Database

log = logging.getLogger(__name__)

# Core's tables live outside the services' mapped metadata: no service model refers to them.
metadata = MetaData(naming_convention=NAMING)
LEASES = Table(
    "core_lease", metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(255), nullable=False),
    Column("expires_at", BigInteger, nullable=False),  # ms since the epoch; 0 once released
)

DEFAULT_TTL = 30.0

# Whether a ``Singleton`` started in this context competes for its lease. Tasks copy the context they were
# created in, so setting it false around a cloud's start covers every singleton its services spawn.
SINGLETONS: contextvars.ContextVar[bool] = contextvars.ContextVar("tinystack_singletons", default=True)


def new_holder() -> str:
    """Who holds a lease: readable in the table (host and pid), unique per ``Lease`` (two clouds in one process)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    """One named lease as seen by one would-be holder. ``acquire`` and ``release`` block on the database."""

    def __init__(self, db: Database, name: str, ttl: float = DEFAULT_TTL, holder: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.name = name
        self.ttl = ttl
        self.holder = holder or new_holder()
        self._clock = clock
        self._mine_until = 0.0

    @property
    def held(self) -> bool:
        """Whether this holder may act on the lease now (renewed recently enough, allowing for clock skew)."""
        return self._clock() < self._mine_until

    def acquire(self) -> bool:
        """Take the lease if it is free or expired, or renew it if it is ours; whether it is ours now."""
        start = self._clock()
        now, expires = int(start * 1000), int((start + self.ttl) * 1000)
        with self.db.engine.begin() as conn:
            won = conn.execute(
                update(LEASES).where(LEASES.c.name == self.name,
                                     or_(LEASES.c.holder == self.holder, LEASES.c.expires_at < now))
                .values(holder=self.holder, expires_at=expires)).rowcount == 1
            exists = won or conn.scalar(select(LEASES.c.name).where(LEASES.c.name == self.name)) is not None
        if not exists:
            try:
                with self.db.engine.begin() as conn:
                    conn.execute(insert(LEASES).values(name=self.name, holder=self.holder, expires_at=expires))
                won = True
            except IntegrityError:
                won = False  # another process made the row first; it holds the lease
        self._mine_until = start + self.ttl * 0.8 if won else 0.0
        return won

    def release(self) -> None:
        """Give the lease up now (on stop), so another process takes over without waiting for expiry."""
        self._mine_until = 0.0
        with self.db.engine.begin() as conn:
            conn.execute(update(LEASES).where(LEASES.c.name == self.name, LEASES.c.holder == self.holder)
                         .values(expires_at=0))

    def current_holder(self) -> str | None:
        """The holder of an unexpired lease, if any (tests, diagnostics)."""
        now = int(self._clock() * 1000)
        with self.db.engine.connect() as conn:
            return conn.scalar(select(LEASES.c.holder).where(LEASES.c.name == self.name, LEASES.c.expires_at >= now))


class Singleton:
    """Runs ``work`` every ``interval`` seconds (the first time after ``first_after``) while this process holds
    ``lease``; the lease is renewed every third of its time to live, whether or not work is running, and
    released when ``run`` is cancelled. A process that does not hold it tries to take it at the same pace, so
    another takes over within about ``ttl * 4/3`` of a holder dying. ``work`` must tolerate the rare overlap
    at a takeover (every singleton here acts by conditional writes)."""

    def __init__(self, lease: Lease, work: Callable[[], Awaitable[None]], interval: float,
                 first_after: float = 0.0) -> None:
        self.lease = lease
        self.work = work
        self.interval = interval
        self.first_after = first_after
        self.tries = 0  # attempts to take or renew the lease so far
        self._acquired = asyncio.Event()

    async def run(self) -> None:
        if not SINGLETONS.get():
            log.info("singleton %s: left to the conductor role", self.lease.name)
            return
        keeper = asyncio.get_running_loop().create_task(self._keep(), name=f"lease-{self.lease.name}")
        try:
            await asyncio.sleep(self.first_after)
            while True:
                await self._acquired.wait()
                if self.lease.held:
                    try:
                        await self.work()
                    except Exception:
                        log.exception("singleton work %s failed", self.lease.name)
                await asyncio.sleep(self.interval)
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            await _release(self.lease)

    async def _keep(self) -> None:
        while True:
            try:
                mine = await asyncio.to_thread(self.lease.acquire)
            except Exception as exc:
                # The database is away: stop acting (``held`` lapses) and try again.
                log.warning("lease %s: renewing failed: %s", self.lease.name, exc)
                mine = False
            self.tries += 1
            if mine:
                self._acquired.set()
            else:
                self._acquired.clear()
            await asyncio.sleep(self.lease.ttl / 3)


@contextlib.asynccontextmanager
async def exclusive(lease: Lease, poll: float = 1.0) -> AsyncIterator[None]:
    """Hold ``lease`` for the block: one-off work (a bootstrap) that two processes must not do at once. Waits
    while another process holds it, and keeps it renewed for as long as the block runs."""
    while not await asyncio.to_thread(lease.acquire):
        await asyncio.sleep(poll)

    async def renew() -> None:
        while True:
            await asyncio.sleep(lease.ttl / 3)
            await asyncio.to_thread(lease.acquire)

    keeper = asyncio.get_running_loop().create_task(renew())
    try:
        yield
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await keeper
        await _release(lease)


async def _release(lease: Lease) -> None:
    try:
        await asyncio.to_thread(lease.release)
    except Exception as exc:
        log.warning("lease %s: releasing failed (it expires instead): %s", lease.name, exc)
