"""Resource providers and what hangs off them: inventories, traits and aggregates.

Every write that changes a provider bumps its generation with a compare-and-swap UPDATE, so a writer that
read an older generation (in this process or another) gets 409 and re-reads."""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Iterable, Mapping

from sqlalchemy import Integer as INT
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from tinystack.core import errors
from tinystack.placement import standard
from tinystack.placement.models import (
    Allocation,
    Inventory,
    ProviderAggregate,
    ProviderTrait,
    ResourceClass,
    ResourceProvider,
    Trait,
    utcnow,
)
from tinystack.placement.records import InventoryRecord, Provider, capacity, concurrent_update

CHANGED = "placement.changed"
"""Key in ``Session.info``: the providers a transaction changed (uuid -> new generation, None when deleted),
for the service to tell its watchers once the transaction commits."""


def changed(s: Session, rp_uuid: str, generation: int | None) -> None:
    s.info.setdefault(CHANGED, {})[rp_uuid] = generation


def not_found(rp_uuid: str) -> errors.NotFound:
    return errors.NotFound(f"No resource provider with uuid {rp_uuid} found", code="placement.resource_provider.not_found")


def _provider(s: Session, rp: ResourceProvider) -> Provider:
    uuids = {rp.id: rp.uuid}
    wanted = {i for i in (rp.parent_id, rp.root_id) if i is not None and i not in uuids}
    if wanted:
        uuids.update(dict(s.execute(select(ResourceProvider.id, ResourceProvider.uuid)
                                    .where(ResourceProvider.id.in_(wanted))).all()))
    return Provider(rp.uuid, rp.name, rp.generation, uuids.get(rp.parent_id) if rp.parent_id else None,
                    uuids[rp.root_id or rp.id], rp.created_at, rp.updated_at)


def load(s: Session, rp_uuid: str) -> ResourceProvider:
    rp = s.scalars(select(ResourceProvider).where(ResourceProvider.uuid == rp_uuid)).first()
    if rp is None:
        raise not_found(rp_uuid)
    return rp


def bump(s: Session, rp: ResourceProvider, expected: int | None = None) -> int:
    """Compare-and-swap the generation; ``expected`` None means the one read with ``rp``."""
    want = rp.generation if expected is None else expected
    res = s.execute(update(ResourceProvider).where(ResourceProvider.id == rp.id, ResourceProvider.generation == want)
                    .values(generation=want + 1, updated_at=utcnow()).execution_options(synchronize_session=False))
    if res.rowcount != 1:  # type: ignore[attr-defined]
        raise concurrent_update(f"resource provider generation conflict: {rp.uuid} is not at generation {want}.")
    changed(s, rp.uuid, want + 1)
    s.expire(rp)
    return want + 1


def get(s: Session, rp_uuid: str) -> Provider:
    return _provider(s, load(s, rp_uuid))


def listing(s: Session, *, uuid: str | None = None, name: str | None = None, in_tree: str | None = None,
            member_of: Iterable[tuple[bool, list[str]]] = (), required: Iterable[str] = (),
            forbidden: Iterable[str] = (), resources: Mapping[str, int] | None = None) -> list[Provider]:
    """Providers matching every filter; ``member_of`` items are (negated, any-of aggregates)."""
    q = select(ResourceProvider)
    if uuid is not None:
        q = q.where(ResourceProvider.uuid == uuid)
    if name is not None:
        q = q.where(ResourceProvider.name == name)
    if in_tree is not None:
        root = s.execute(select(func.coalesce(ResourceProvider.root_id, ResourceProvider.id))
                         .where(ResourceProvider.uuid == in_tree)).scalar()
        if root is None:
            return []
        q = q.where(func.coalesce(ResourceProvider.root_id, ResourceProvider.id) == root)
    q = filter_providers(q, ResourceProvider.id, member_of, required, forbidden)
    for rc, amount in (resources or {}).items():
        inv = aliased(Inventory)
        q = q.join(inv, (inv.rp_id == ResourceProvider.id) & (inv.resource_class == rc)).where(
            func.cast((inv.total - inv.reserved) * inv.allocation_ratio, INT) - inv.used >= amount)
    return [_provider(s, rp) for rp in s.scalars(q.order_by(ResourceProvider.id))]


def filter_providers(q, rp_id, member_of, required, forbidden):  # type: ignore[no-untyped-def]
    """Add trait and aggregate conditions on the provider id column ``rp_id`` to a select."""
    required, forbidden = list(required), list(forbidden)
    if required:
        q = q.where(rp_id.in_(select(ProviderTrait.rp_id).where(ProviderTrait.trait.in_(required))
                              .group_by(ProviderTrait.rp_id).having(func.count() == len(set(required)))))
    if forbidden:
        q = q.where(rp_id.not_in(select(ProviderTrait.rp_id).where(ProviderTrait.trait.in_(forbidden))))
    for negated, aggregates in member_of:
        sub = select(ProviderAggregate.rp_id).where(ProviderAggregate.aggregate.in_(aggregates))
        q = q.where(rp_id.not_in(sub) if negated else rp_id.in_(sub))
    return q


def create(s: Session, name: str, rp_uuid: str | None = None, parent_uuid: str | None = None) -> Provider:
    rp_uuid = rp_uuid or str(uuidlib.uuid4())
    if s.scalar(select(ResourceProvider.id).where(ResourceProvider.uuid == rp_uuid)) is not None:
        raise errors.Conflict(f"Conflicting resource provider uuid: {rp_uuid} already exists.", code="placement.duplicate_uuid")
    if s.scalar(select(ResourceProvider.id).where(ResourceProvider.name == name)) is not None:
        raise errors.Conflict(f"Conflicting resource provider name: {name} already exists.", code="placement.duplicate_name")
    parent_id = root_id = None
    if parent_uuid is not None:
        parent = s.scalars(select(ResourceProvider).where(ResourceProvider.uuid == parent_uuid)).first()
        if parent is None:
            raise errors.BadRequest(f"parent provider UUID {parent_uuid} does not exist.",
                                    code="placement.resource_provider.not_found")
        parent_id, root_id = parent.id, parent.root_id or parent.id
    rp = ResourceProvider(uuid=rp_uuid, name=name, generation=0, parent_id=parent_id, root_id=root_id)
    s.add(rp)
    try:
        s.flush()
    except IntegrityError:  # a concurrent create of the same name or uuid
        raise errors.Conflict(f"Conflicting resource provider {name} already exists.", code="placement.duplicate_name") from None
    if root_id is None:
        rp.root_id = rp.id
    changed(s, rp.uuid, 0)
    return _provider(s, rp)


def update_provider(s: Session, rp_uuid: str, name: str, parent_uuid: str | None, parent_given: bool) -> Provider:
    rp = load(s, rp_uuid)
    if name != rp.name and s.scalar(select(ResourceProvider.id).where(ResourceProvider.name == name)) is not None:
        raise errors.Conflict(f"Conflicting resource provider name: {name} already exists.", code="placement.duplicate_name")
    rp.name = name
    if parent_given:
        current = _provider(s, rp).parent_uuid
        if parent_uuid != current:
            # Re-parenting arrives with microversion 1.37; until then a parent can only be set once.
            if current is not None or parent_uuid is None:
                raise errors.BadRequest("re-parenting a provider is not currently allowed.")
            if parent_uuid == rp.uuid:
                raise errors.BadRequest("creating loop in the provider tree is not allowed.")
            parent = load_parent(s, parent_uuid)
            if (parent.root_id or parent.id) == (rp.root_id or rp.id):
                raise errors.BadRequest("creating loop in the provider tree is not allowed.")
            new_root = parent.root_id or parent.id
            s.execute(update(ResourceProvider).where(ResourceProvider.root_id == (rp.root_id or rp.id))
                      .values(root_id=new_root).execution_options(synchronize_session=False))
            rp.parent_id, rp.root_id = parent.id, new_root
    s.flush()
    bump(s, rp)
    return get(s, rp_uuid)


def load_parent(s: Session, parent_uuid: str) -> ResourceProvider:
    parent = s.scalars(select(ResourceProvider).where(ResourceProvider.uuid == parent_uuid)).first()
    if parent is None:
        raise errors.BadRequest(f"parent provider UUID {parent_uuid} does not exist.")
    return parent


def delete_provider(s: Session, rp_uuid: str) -> None:
    rp = load(s, rp_uuid)
    if s.scalar(select(Allocation.id).where(Allocation.rp_id == rp.id).limit(1)) is not None:
        raise errors.Conflict(f"Unable to delete resource provider {rp_uuid}: Resource provider has allocations.",
                              code="placement.resource_provider.inuse")
    if s.scalar(select(ResourceProvider.id).where(ResourceProvider.parent_id == rp.id).limit(1)) is not None:
        raise errors.Conflict(f"Unable to delete parent resource provider {rp_uuid}: It has child resource providers.",
                              code="placement.resource_provider.cannot_delete_parent")
    changed(s, rp.uuid, None)
    s.delete(rp)


# --- inventories ------------------------------------------------------------------------------


def inventories(s: Session, rp: ResourceProvider) -> dict[str, InventoryRecord]:
    rows = s.scalars(select(Inventory).where(Inventory.rp_id == rp.id).order_by(Inventory.resource_class))
    return {r.resource_class: InventoryRecord(r.resource_class, r.total, r.reserved, r.min_unit, r.max_unit,
                                              r.step_size, r.allocation_ratio, r.used) for r in rows}


def check_resource_class(s: Session, rc: str) -> None:
    if rc in standard.RESOURCE_CLASSES:
        return
    if not standard.is_custom(rc) or s.get(ResourceClass, rc) is None:
        raise errors.BadRequest(f"Unknown resource class in inventory for resource provider: {rc}",
                                code="placement.undefined_code")


def set_inventories(s: Session, rp_uuid: str, generation: int, wanted: Mapping[str, Mapping[str, int | float]],
                    replace: bool = True) -> tuple[int, dict[str, InventoryRecord]]:
    """Replace all inventories (``replace``) or upsert the given ones, as one generation step."""
    rp = load(s, rp_uuid)
    if rp.generation != generation:
        raise concurrent_update(f"resource provider generation conflict: {rp_uuid} is at generation {rp.generation}.")
    current = {r.resource_class: r for r in s.scalars(select(Inventory).where(Inventory.rp_id == rp.id))}
    for rc, fields in wanted.items():
        check_resource_class(s, rc)
        rec = normalize(rc, fields)
        row = current.get(rc)
        if row is None:
            s.add(Inventory(rp_id=rp.id, resource_class=rc, used=0, **rec.fields()))
        else:
            for key, value in rec.fields().items():
                setattr(row, key, value)
    if replace:
        for rc in set(current) - set(wanted):
            drop_inventory(s, rp, current[rc])
    s.flush()
    bump(s, rp, generation)
    return generation + 1, inventories(s, rp)


def normalize(rc: str, fields: Mapping[str, int | float]) -> InventoryRecord:
    total = int(fields["total"])
    rec = InventoryRecord(rc, total, int(fields.get("reserved", 0)), int(fields.get("min_unit", 1)),
                          int(fields.get("max_unit", total)), int(fields.get("step_size", 1)),
                          float(fields.get("allocation_ratio", 1.0)))
    if rec.reserved > rec.total:
        raise errors.BadRequest(f"Unable to update inventory for resource provider: reserved {rec.reserved} of {rc} "
                                f"is greater than total {rec.total}.", code="placement.undefined_code")
    if rec.min_unit > rec.max_unit:
        raise errors.BadRequest(f"Unable to update inventory: min_unit {rec.min_unit} of {rc} is greater than "
                                f"max_unit {rec.max_unit}.")
    return rec


def drop_inventory(s: Session, rp: ResourceProvider, row: Inventory) -> None:
    if row.used or s.scalar(select(Allocation.id).where(Allocation.rp_id == rp.id,
                                                        Allocation.resource_class == row.resource_class).limit(1)):
        raise errors.Conflict(f"Inventory for '{row.resource_class}' on resource provider '{rp.uuid}' in use.",
                              code="placement.inventory.inuse")
    s.delete(row)


def delete_inventory(s: Session, rp_uuid: str, rc: str, generation: int | None) -> None:
    rp = load(s, rp_uuid)
    row = s.get(Inventory, (rp.id, rc))
    if row is None:
        raise errors.NotFound(f"No inventory of class {rc} found for delete")
    drop_inventory(s, rp, row)
    s.flush()
    bump(s, rp, generation)


def usages(s: Session, rp_uuid: str) -> tuple[int, dict[str, int]]:
    """Summed from the allocations themselves (not the ``used`` cache), as the API's source of truth."""
    rp = load(s, rp_uuid)
    out = {rc: 0 for rc in s.scalars(select(Inventory.resource_class).where(Inventory.rp_id == rp.id))}
    rows = s.execute(select(Allocation.resource_class, func.sum(Allocation.used)).where(Allocation.rp_id == rp.id)
                     .group_by(Allocation.resource_class))
    out.update({rc: int(total) for rc, total in rows})
    return rp.generation, out


# --- traits and aggregates on a provider ----------------------------------------------------------


def traits(s: Session, rp: ResourceProvider) -> list[str]:
    return sorted(s.scalars(select(ProviderTrait.trait).where(ProviderTrait.rp_id == rp.id)))


def check_traits(s: Session, names: Iterable[str]) -> None:
    custom = [n for n in names if n not in standard.TRAITS]
    known = set(s.scalars(select(Trait.name).where(Trait.name.in_(custom)))) if custom else set()
    missing = sorted(set(custom) - known)
    if missing:
        raise errors.BadRequest(f"No such trait(s): {', '.join(missing)}.", code="placement.undefined_code")


def set_traits(s: Session, rp_uuid: str, names: list[str], generation: int | None) -> tuple[int, list[str]]:
    rp = load(s, rp_uuid)
    check_traits(s, names)
    if generation is not None and rp.generation != generation:
        raise concurrent_update(f"resource provider generation conflict: {rp_uuid} is at generation {rp.generation}.")
    s.execute(delete(ProviderTrait).where(ProviderTrait.rp_id == rp.id))
    if names:
        s.execute(insert(ProviderTrait), [{"rp_id": rp.id, "trait": n} for n in sorted(set(names))])
    new = bump(s, rp, generation)
    return new, traits(s, rp)


def aggregates(s: Session, rp: ResourceProvider) -> list[str]:
    return sorted(s.scalars(select(ProviderAggregate.aggregate).where(ProviderAggregate.rp_id == rp.id)))


def set_aggregates(s: Session, rp_uuid: str, aggs: list[str], generation: int | None) -> tuple[int, list[str]]:
    rp = load(s, rp_uuid)
    if generation is not None and rp.generation != generation:
        raise concurrent_update(f"resource provider generation conflict: {rp_uuid} is at generation {rp.generation}.")
    s.execute(delete(ProviderAggregate).where(ProviderAggregate.rp_id == rp.id))
    if aggs:
        s.execute(insert(ProviderAggregate), [{"rp_id": rp.id, "aggregate": a} for a in sorted(set(aggs))])
    new = bump(s, rp, generation)
    return new, aggregates(s, rp)


def capacity_of(row: Inventory) -> int:
    return capacity(row.total, row.reserved, row.allocation_ratio)
