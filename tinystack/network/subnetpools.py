"""Subnet pools: prefixes that subnets are carved from (first free prefix of the requested length)."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tinystack.core.auth import RequestContext
from tinystack.network import views
from tinystack.network.addressscopes import check_pool_scope
from tinystack.network.common import (
    bad,
    check_bool,
    check_str,
    conflict,
    drop_tags,
    new_uuid,
    not_found,
    touch,
    unknown_attrs,
    visible_query,
)
from tinystack.network.models import Subnet, SubnetPool

if TYPE_CHECKING:
    # Annotations only: at run time the service hands itself in, and the concepts stay below service.py.
    from tinystack.network.service import Changes, NetworkService

ATTRS = ("name", "description", "prefixes", "default_prefixlen", "min_prefixlen", "max_prefixlen", "shared",
         "is_default", "default_quota", "address_scope_id", "project_id", "tenant_id")
UPDATABLE = ("name", "description", "prefixes", "default_prefixlen", "min_prefixlen", "max_prefixlen", "is_default",
             "default_quota", "address_scope_id")


def _prefixes(value: Any) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    if not isinstance(value, list) or not value:
        raise bad("Invalid input for prefixes. Reason: a non-empty list of CIDRs is required.")
    try:
        nets = [ipaddress.ip_network(p, strict=False) for p in value]
    except (ValueError, TypeError):
        raise bad(f"Invalid input for prefixes. Reason: '{value}' contains an invalid CIDR.") from None
    if len({n.version for n in nets}) != 1:
        raise bad("Illegal subnetpool prefix: prefixes must all be of one IP version.", "IllegalSubnetPoolPrefixes")
    return list(ipaddress.collapse_addresses(nets))  # type: ignore[type-var]


def _int(attrs: dict[str, Any], name: str, default: int) -> int:
    value = attrs.get(name, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad(f"Invalid input for {name}. Reason: '{value}' is not an integer.") from None


def resolve(svc: NetworkService, s: Session, ctx: RequestContext, attrs: dict[str, Any],
            version: int | None) -> str | None:
    pool_id = attrs.get("subnetpool_id")
    if pool_id is None and attrs.get("use_default_subnetpool"):
        pool = s.scalar(select(SubnetPool).where(SubnetPool.is_default.is_(True),
                                                 SubnetPool.ip_version == (version or 4)))
        if pool is None:
            raise bad(f"No default subnetpool found for IPv{version or 4}", "BadRequest")
        return pool.id
    if pool_id is None:
        return None
    if not SubnetPools().visible(svc, s, ctx, pool_id):
        raise not_found("subnetpool", str(pool_id))
    return str(pool_id)


def carve(s: Session, pool_id: str, prefixlen: Any) -> str:
    pool = s.get(SubnetPool, pool_id)
    assert pool is not None
    length = pool.default_prefixlen if prefixlen is None else int(prefixlen)
    if not pool.min_prefixlen <= length <= pool.max_prefixlen:
        raise bad(f"Illegal prefix bounds: prefixlen={length}, min_prefixlen={pool.min_prefixlen}, "
                  f"max_prefixlen={pool.max_prefixlen}.", "IllegalSubnetPoolPrefixBounds")
    used = [ipaddress.ip_network(c) for c in s.scalars(select(Subnet.cidr).where(Subnet.subnetpool_id == pool_id))]
    for prefix in pool.prefixes:
        net = ipaddress.ip_network(prefix)
        if length < net.prefixlen:
            continue
        for candidate in net.subnets(new_prefix=length):
            if not any(candidate.overlaps(u) for u in used):
                return str(candidate)
    raise conflict(f"Subnet allocation failed: no prefix of length /{length} is free in subnet pool {pool_id}.",
                   "SubnetAllocationError")


def check_in_pool(s: Session, pool_id: str, cidr: str) -> None:
    pool = s.get(SubnetPool, pool_id)
    assert pool is not None
    try:
        net = ipaddress.ip_network(cidr)
    except ValueError:
        return  # parse_cidr reports it
    if not any(net.version == ipaddress.ip_network(p).version and net.subnet_of(ipaddress.ip_network(p))  # type: ignore[arg-type]
               for p in pool.prefixes):
        raise bad(f"Cidr {cidr} is not within the prefixes of subnet pool {pool_id}.", "CidrOutOfPool")
    for other in s.scalars(select(Subnet.cidr).where(Subnet.subnetpool_id == pool_id)):
        if ipaddress.ip_network(other).overlaps(net):
            raise bad(f"Cidr {cidr} overlaps with another subnet of pool {pool_id}.", "SubnetAllocationError")


class SubnetPools:
    singular = "subnetpool"
    plural = "subnetpools"
    quota: str | None = None

    def visible(self, svc: NetworkService, s: Session, ctx: RequestContext, ident: str | None = None) -> list[Any]:
        return list(s.scalars(visible_query(SubnetPool, ctx, ident, SubnetPool.shared.is_(True))))

    def render(self, svc: NetworkService, s: Session, ctx: RequestContext, rows: list[Any]) -> list[dict[str, Any]]:
        return views.subnetpools(svc, s, ctx, rows)

    def _bounds(self, attrs: dict[str, Any], version: int, current: SubnetPool | None) -> tuple[int, int, int]:
        top = 32 if version == 4 else 128
        low = _int(attrs, "min_prefixlen", current.min_prefixlen if current else 8)
        high = _int(attrs, "max_prefixlen", current.max_prefixlen if current else top)
        default = _int(attrs, "default_prefixlen", current.default_prefixlen if current else low)
        if not 0 <= low <= default <= high <= top:
            raise bad(f"Illegal prefix bounds: min_prefixlen={low}, default_prefixlen={default}, "
                      f"max_prefixlen={high}.", "IllegalSubnetPoolPrefixBounds")
        return low, default, high

    def create(self, svc: NetworkService, s: Session, ctx: RequestContext, attrs: dict[str, Any],
               changes: Changes) -> str:
        unknown_attrs(attrs, ATTRS)
        check_str(attrs, "name", "description")
        check_bool(attrs, "shared", "is_default")
        project = svc.owner(ctx, attrs)
        target = {"project_id": project}
        svc.enforce(ctx, "create_subnetpool", target)
        svc.enforce_attrs(ctx, "create_subnetpool", attrs, target, ("shared", "is_default"))
        prefixes = _prefixes(attrs.get("prefixes"))
        version = prefixes[0].version
        if "min_prefixlen" not in attrs:
            attrs["min_prefixlen"] = min(p.prefixlen for p in prefixes) if version == 4 else 64
        low, default, high = self._bounds(attrs, version, None)
        scope = check_pool_scope(svc, s, ctx, attrs.get("address_scope_id"), version)
        pool = SubnetPool(id=new_uuid(), project_id=project, name=attrs.get("name", ""),
                          description=attrs.get("description", ""), ip_version=version,
                          prefixes=[str(p) for p in prefixes], default_prefixlen=default, min_prefixlen=low,
                          max_prefixlen=high, shared=attrs.get("shared", False),
                          is_default=attrs.get("is_default", False), default_quota=attrs.get("default_quota"),
                          address_scope_id=scope)
        s.add(pool)
        s.flush()
        return pool.id

    def update(self, svc: NetworkService, s: Session, ctx: RequestContext, row: SubnetPool, attrs: dict[str, Any],
               changes: Changes) -> None:
        unknown_attrs(attrs, UPDATABLE)
        check_str(attrs, "name", "description")
        check_bool(attrs, "is_default")
        svc.enforce(ctx, "update_subnetpool", {"project_id": row.project_id})
        if "prefixes" in attrs:
            new = _prefixes(attrs["prefixes"])
            if any(n.version != row.ip_version for n in new):
                raise bad("Illegal subnetpool prefix update: IP version mismatch.", "IllegalSubnetPoolPrefixUpdate")
            old = [ipaddress.ip_network(p) for p in row.prefixes]
            if not all(any(o.subnet_of(n) for n in new) for o in old):  # type: ignore[arg-type]
                raise bad("Illegal subnetpool prefix update: existing prefixes must be kept.",
                          "IllegalSubnetPoolPrefixUpdate")
            row.prefixes = [str(p) for p in new]
        if "address_scope_id" in attrs:
            attrs["address_scope_id"] = check_pool_scope(svc, s, ctx, attrs["address_scope_id"], row.ip_version,
                                                         row.id)
        row.min_prefixlen, row.default_prefixlen, row.max_prefixlen = self._bounds(attrs, row.ip_version, row)
        for key in ("name", "description", "is_default", "default_quota", "address_scope_id"):
            if key in attrs:
                setattr(row, key, attrs[key])
        touch(row)

    def delete(self, svc: NetworkService, s: Session, ctx: RequestContext, row: SubnetPool, changes: Changes) -> None:
        svc.enforce(ctx, "delete_subnetpool", {"project_id": row.project_id})
        if s.scalar(select(Subnet.id).where(Subnet.subnetpool_id == row.id).limit(1)):
            raise conflict(f"Unable to delete subnet pool {row.id}: subnets are allocated from it.", "SubnetPoolInUse")
        drop_tags(s, row.id)
        s.delete(row)
