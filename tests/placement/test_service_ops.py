"""The HTTP API's operations on the placement service: policy checked before any data is touched, writes in
a worker thread (retried, watchers told), and the rules the handlers used to hold."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Mapping

import pytest

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.core.service import ServiceBase
from tinystack.placement.allocations import ConsumerWrite
from tinystack.placement.candidates import Request
from tinystack.placement.commands import CandidateQuery, InventoryWrite, ProviderQuery, ProviderWrite
from tinystack.placement.service import PlacementService

pytestmark = pytest.mark.unit

ADMIN = RequestContext(user_id="admin", project_id="p-admin", roles=("admin", "member", "reader"))
MEMBER = RequestContext(user_id="someone", project_id="p-1", roles=("member", "reader"))


def test_every_operation_checks_policy_first(placement: PlacementService) -> None:
    assert isinstance(placement, ServiceBase)
    rp = str(uuid.uuid4())
    calls: list[Callable[[], object]] = [
        lambda: placement.list_providers(MEMBER, ProviderQuery()),
        lambda: placement.create_provider(MEMBER, ProviderWrite("x")),
        lambda: placement.show_provider(MEMBER, rp),
        lambda: placement.update_provider(MEMBER, rp, ProviderWrite("x")),
        lambda: placement.delete_provider(MEMBER, rp),
        lambda: placement.usages_on(MEMBER, rp),
        lambda: placement.allocations_on(MEMBER, rp),
        lambda: placement.aggregates_of(MEMBER, rp),
        lambda: placement.set_aggregates(MEMBER, rp, [], None),
        lambda: placement.traits_of(MEMBER, rp),
        lambda: placement.set_traits(MEMBER, rp, [], 0),
        lambda: placement.clear_traits(MEMBER, rp),
        lambda: placement.inventories_of(MEMBER, rp),
        lambda: placement.inventory_of(MEMBER, rp, "VCPU"),
        lambda: placement.replace_inventories(MEMBER, InventoryWrite(rp, 0, {}, True)),
        lambda: placement.add_inventory(MEMBER, InventoryWrite(rp, None, {"VCPU": {"total": 1}})),
        lambda: placement.update_inventory(MEMBER, InventoryWrite(rp, 0, {"VCPU": {"total": 1}})),
        lambda: placement.clear_inventories(MEMBER, rp),
        lambda: placement.delete_inventory(MEMBER, rp, "VCPU"),
        lambda: placement.list_traits(MEMBER, None, None),
        lambda: placement.show_trait(MEMBER, "CUSTOM_X"),
        lambda: placement.put_trait(MEMBER, "CUSTOM_X"),
        lambda: placement.delete_trait(MEMBER, "CUSTOM_X"),
        lambda: placement.list_classes(MEMBER),
        lambda: placement.show_class(MEMBER, "VCPU"),
        lambda: placement.create_class(MEMBER, "CUSTOM_X"),
        lambda: placement.ensure_class(MEMBER, "CUSTOM_X"),
        lambda: placement.rename_class(MEMBER, "CUSTOM_X", "CUSTOM_Y"),
        lambda: placement.delete_class(MEMBER, "CUSTOM_X"),
        lambda: placement.consumer_allocations(MEMBER, rp),
        lambda: placement.replace_allocations(MEMBER, ConsumerWrite(rp, {})),
        lambda: placement.manage_allocations(MEMBER, []),
        lambda: placement.delete_allocations(MEMBER, rp),
        lambda: placement.project_usages(MEMBER, "p-1", None),
        lambda: placement.allocation_candidates(MEMBER, CandidateQuery([Request({"VCPU": 1})])),
    ]

    async def call(fn: Callable[[], object]) -> None:
        result = fn()
        if asyncio.iscoroutine(result):
            await result

    for fn in calls:
        with pytest.raises(errors.PolicyNotAuthorized):
            asyncio.run(call(fn))
    # Nothing was written on the way to those refusals.
    assert placement.list_providers(ADMIN, ProviderQuery()) == []
    assert "CUSTOM_X" not in placement.list_traits(ADMIN, None, None)


def test_writes_run_on_a_worker_thread_and_tell_watchers(placement: PlacementService) -> None:
    seen: list[tuple[str, Mapping[str, int | None]]] = []
    placement.watch(lambda changed: seen.append((threading.current_thread().name, dict(changed))))

    async def scenario() -> str:
        rp = await placement.create_provider(ADMIN, ProviderWrite("host-w"))
        await placement.replace_inventories(ADMIN, InventoryWrite(rp.uuid, 0, {"VCPU": {"total": 4}}, True))
        return rp.uuid

    loop_thread = threading.current_thread().name
    rp = asyncio.run(scenario())
    assert [c for _, c in seen] == [{rp: 0}, {rp: 1}]
    assert all(name != loop_thread for name, _ in seen)


def test_inventory_rules_moved_from_the_handlers(placement: PlacementService) -> None:
    async def scenario() -> None:
        rp = (await placement.create_provider(ADMIN, ProviderWrite("host-i"))).uuid
        gen, rec = await placement.add_inventory(ADMIN, InventoryWrite(rp, None, {"VCPU": {"total": 4}}))
        assert (gen, rec.total) == (1, 4)
        with pytest.raises(errors.Conflict, match="already exists"):
            await placement.add_inventory(ADMIN, InventoryWrite(rp, None, {"VCPU": {"total": 4}}))
        with pytest.raises(errors.BadRequest, match="No inventory record"):
            await placement.update_inventory(ADMIN, InventoryWrite(rp, gen, {"DISK_GB": {"total": 1}}))
        with pytest.raises(errors.Conflict, match="generation"):
            await placement.update_inventory(ADMIN, InventoryWrite(rp, gen - 1, {"VCPU": {"total": 8}}))
        assert (await placement.update_inventory(ADMIN, InventoryWrite(rp, gen, {"VCPU": {"total": 8}})))[1].total == 8
        await placement.replace_allocations(ADMIN, ConsumerWrite(str(uuid.uuid4()), {rp: {"VCPU": 2}}, "p-1", "u-1"))
        with pytest.raises(errors.Conflict, match="in use"):
            await placement.clear_inventories(ADMIN, rp)
        with pytest.raises(errors.NotFound, match="No allocations"):
            await placement.delete_allocations(ADMIN, str(uuid.uuid4()))
        with pytest.raises(errors.BadRequest, match="does not exist"):
            await placement.replace_allocations(ADMIN, ConsumerWrite(str(uuid.uuid4()), {}, generation=None))
        assert placement.project_usages(ADMIN, "p-1", None) == {"VCPU": 2}
        found = placement.allocation_candidates(ADMIN, CandidateQuery([Request({"VCPU": 2})], with_traits=True))
        assert [c.rp_uuid for c in found.found] == [rp] and found.traits == {rp: []}
        with pytest.raises(errors.BadRequest, match="No such resource class"):
            placement.allocation_candidates(ADMIN, CandidateQuery([Request({"CUSTOM_NOPE": 1})]))

    asyncio.run(scenario())
