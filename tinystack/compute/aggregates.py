"""Host aggregates (os-aggregates): named groups of compute hosts with metadata. The ``availability_zone``
key of an aggregate's metadata puts its hosts in that zone (a host in no such aggregate is in the default
zone). Membership is mirrored into placement as provider aggregates with the same uuid, as Nova does."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tinystack.compute.models import Aggregate, AggregateHost, Service, utcnow
from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.placement.interface import PLACEMENT

if TYPE_CHECKING:
    from tinystack.compute.service import ComputeService

AZ = "availability_zone"
RULE = "os_compute_api:os-aggregates:{}"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HostAggregate:
    id: int
    uuid: str
    name: str
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime | None
    hosts: list[str] = field(default_factory=list)

    @property
    def availability_zone(self) -> str | None:
        return self.metadata.get(AZ)


# --- reads other compute parts use (zones, host states) -------------------------------------------


def members(s: Session) -> dict[int, list[str]]:
    """Every aggregate's hosts, by aggregate id, in one query."""
    out: dict[int, list[str]] = {}
    for agg_id, host in s.execute(select(AggregateHost.aggregate_id, AggregateHost.host).order_by(AggregateHost.host)):
        out.setdefault(agg_id, []).append(host)
    return out


def load_all(s: Session) -> list[HostAggregate]:
    hosts = members(s)
    return [_record(a, hosts.get(a.id, [])) for a in s.scalars(select(Aggregate).order_by(Aggregate.id))]


def zone_of(s: Session, host: str, default: str) -> str:
    """The availability zone of ``host``: its aggregates' (first by id), else the default zone."""
    q = (select(Aggregate.meta).join(AggregateHost, AggregateHost.aggregate_id == Aggregate.id)
         .where(AggregateHost.host == host).order_by(Aggregate.id))
    for meta in s.scalars(q):
        if (meta or {}).get(AZ):
            return str(meta[AZ])
    return default


def zone_names(s: Session) -> set[str]:
    return {str(m[AZ]) for m in s.scalars(select(Aggregate.meta)) if (m or {}).get(AZ)}


def _record(a: Aggregate, hosts: list[str]) -> HostAggregate:
    return HostAggregate(a.id, a.uuid, a.name, dict(a.meta or {}), a.created_at, a.updated_at, sorted(hosts))


# --- the API's rules ------------------------------------------------------------------------------


class Aggregates:
    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc

    def _authorize(self, ctx: RequestContext, action: str) -> None:
        self.svc.enforce(ctx, RULE.format(action), {})

    def list_all(self, ctx: RequestContext) -> list[HostAggregate]:
        self._authorize(ctx, "index")
        with self.svc.session() as s:
            return load_all(s)

    def show(self, ctx: RequestContext, ident: str) -> HostAggregate:
        self._authorize(ctx, "show")
        with self.svc.session() as s:
            return self._view(s, self._get(s, ident))

    def create(self, ctx: RequestContext, name: str, zone: str | None) -> HostAggregate:
        self._authorize(ctx, "create")
        now = utcnow()
        with self.svc.session() as s:
            self._check_name(s, name)
            row = Aggregate(uuid=str(uuid.uuid4()), name=name, meta={AZ: zone} if zone else {}, created_at=now)
            s.add(row)
            self._flush(s, name)
            return self._view(s, row)

    def update(self, ctx: RequestContext, ident: str, changes: Mapping[str, Any]) -> HostAggregate:
        """``name`` and/or ``availability_zone`` (which must then name a zone: it cannot be emptied here)."""
        self._authorize(ctx, "update")
        with self.svc.session() as s:
            row = self._get(s, ident)
            if "name" in changes and changes["name"] != row.name:
                self._check_name(s, changes["name"], row.id)
                row.name = changes["name"]
            if AZ in changes:
                self._check_zone(s, row, changes[AZ], self._hosts(s, row.id), errors.BadRequest)
                row.meta = {**(row.meta or {}), AZ: changes[AZ]}
            row.updated_at = utcnow()
            self._flush(s, row.name)
            return self._view(s, row)

    def delete(self, ctx: RequestContext, ident: str) -> None:
        self._authorize(ctx, "delete")
        with self.svc.session() as s:
            row = self._get(s, ident)
            if self._hosts(s, row.id):
                raise errors.BadRequest(f"Cannot remove aggregate {row.id}. Reason: Host aggregate is not empty.")
            s.delete(row)

    def set_metadata(self, ctx: RequestContext, ident: str, metadata: Mapping[str, str | None]) -> HostAggregate:
        """Merge ``metadata`` into the aggregate's; a None value removes its key."""
        self._authorize(ctx, "set_metadata")
        with self.svc.session() as s:
            row = self._get(s, ident)
            if AZ in metadata:
                self._check_zone(s, row, metadata[AZ], self._hosts(s, row.id), errors.BadRequest)
            meta = dict(row.meta or {})
            for key, value in metadata.items():
                if value is None:
                    meta.pop(key, None)
                else:
                    meta[key] = value
            row.meta = meta
            row.updated_at = utcnow()
            return self._view(s, row)

    def add_host(self, ctx: RequestContext, ident: str, host: str) -> HostAggregate:
        self._authorize(ctx, "add_host")
        with self.svc.session() as s:
            self._check_host(s, host)
            row = self._get(s, ident)
            if host in self._hosts(s, row.id):
                raise errors.Conflict(f"Aggregate {row.id} already has host {host}.")
            if (row.meta or {}).get(AZ):
                self._check_zone(s, row, row.meta[AZ], [host], errors.Conflict)
            try:
                with s.begin_nested():
                    s.execute(insert(AggregateHost).values(aggregate_id=row.id, host=host))
            except IntegrityError:  # a concurrent add of the same host won
                raise errors.Conflict(f"Aggregate {row.id} already has host {host}.") from None
            row.updated_at = utcnow()
            agg_uuid = row.uuid
            view = self._view(s, row)
        self._mirror(host, agg_uuid, True)
        return view

    def remove_host(self, ctx: RequestContext, ident: str, host: str) -> HostAggregate:
        self._authorize(ctx, "remove_host")
        with self.svc.session() as s:
            row = self._get(s, ident)
            gone = s.execute(delete(AggregateHost).where(AggregateHost.aggregate_id == row.id,
                                                         AggregateHost.host == host))
            if not gone.rowcount:  # type: ignore[attr-defined]
                raise errors.NotFound(f"Cannot remove host {host} in aggregate {row.id}: it is not a member.")
            row.updated_at = utcnow()
            agg_uuid = row.uuid
            view = self._view(s, row)
        self._mirror(host, agg_uuid, False)
        return view

    # --- helpers --------------------------------------------------------------------------------

    @staticmethod
    def _get(s: Session, ident: str) -> Aggregate:
        try:
            agg_id = int(ident)
        except ValueError:
            raise errors.BadRequest(f"Invalid aggregate id {ident!r}: it must be an integer.") from None
        row = s.get(Aggregate, agg_id)
        if row is None:
            raise errors.NotFound(f"Aggregate {ident} could not be found.")
        return row

    @staticmethod
    def _hosts(s: Session, agg_id: int) -> list[str]:
        return sorted(s.scalars(select(AggregateHost.host).where(AggregateHost.aggregate_id == agg_id)))

    def _view(self, s: Session, row: Aggregate) -> HostAggregate:
        s.flush()
        return _record(row, self._hosts(s, row.id))

    @staticmethod
    def _check_name(s: Session, name: str, own_id: int | None = None) -> None:
        other = s.scalar(select(Aggregate.id).where(Aggregate.name == name))
        if other is not None and other != own_id:
            raise errors.Conflict(f"Aggregate {name} already exists.")

    @staticmethod
    def _flush(s: Session, name: str) -> None:
        try:
            s.flush()
        except IntegrityError:  # a concurrent create or rename to the same name
            raise errors.Conflict(f"Aggregate {name} already exists.") from None

    @staticmethod
    def _check_host(s: Session, host: str) -> None:
        if s.scalar(select(Service.uuid).where(Service.host == host, Service.binary == "nova-compute")) is None:
            raise errors.NotFound(f"Compute host {host} could not be found.")

    @staticmethod
    def _check_zone(s: Session, row: Aggregate, zone: str | None, hosts: list[str],
                    error: type[errors.TinyError]) -> None:
        """A zone must have a name, and a host can be in one zone only (Nova's is_safe_to_update_az)."""
        if not zone:
            raise errors.BadRequest(f"Aggregate {row.name} does not support empty named availability zone.")
        if not hosts:
            return
        q = (select(Aggregate.meta).join(AggregateHost, AggregateHost.aggregate_id == Aggregate.id)
             .where(AggregateHost.host.in_(hosts), Aggregate.id != row.id))
        conflicting = sorted({str(m[AZ]) for m in s.scalars(q) if (m or {}).get(AZ) and m[AZ] != zone})
        if conflicting:
            raise error(f"Cannot update aggregate {row.id}. Reason: One or more hosts already in availability "
                        f"zone(s) {conflicting}.")

    def _mirror(self, host: str, agg_uuid: str, member: bool) -> None:
        """Placement's view of the same membership (its ``member_of`` queries use it)."""
        if not self.svc.has("placement"):
            return
        if not self.svc.service(PLACEMENT).set_provider_aggregate(host, agg_uuid, member):
            log.warning("host %s has no resource provider: aggregate %s not mirrored in placement", host, agg_uuid)
