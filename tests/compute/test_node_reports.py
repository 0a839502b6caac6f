"""Node reports on the API side (``Admin.upsert_node``): agents re-send them every minute and several API
processes apply them in any order, so a node's row keeps the newest report, and an older one counts only as a
heartbeat. Driven on the live cloud's own node, whose report the test restores at the end."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.livecloud import LiveCloud
from tinystack.compute.admin import _node_values
from tinystack.compute.models import ComputeNode, Service

pytestmark = pytest.mark.api


def _row(compute: Any, host: str) -> tuple[ComputeNode, float]:
    with compute.session() as s:
        node = s.get(ComputeNode, host)
        service = s.query(Service).filter_by(host=host, binary="nova-compute").one()
        assert node is not None
        return node, service.last_seen


def _report(node: ComputeNode, **changes: Any) -> dict[str, Any]:
    return {"vcpus": node.vcpus, "memory_mb": node.memory_mb, "local_gb": node.local_gb,
            "hypervisor_type": node.hypervisor_type, "hypervisor_version": node.hypervisor_version,
            "cpu_info": node.cpu_info, "running_vms": node.running_vms, "host_ip": node.host_ip,
            "console_address": node.console_address or "", **changes}


def test_the_newest_report_of_a_node_wins_in_any_order(live: LiveCloud, compute: Any, fake_host: str) -> None:
    admin = compute.admin
    original, _ = _row(compute, fake_host)
    now = time.time()
    try:
        admin.upsert_node(fake_host, _report(original, running_vms=41, reported_at=now + 5))
        assert _row(compute, fake_host)[0].running_vms == 41
        # Built earlier, applied later (another API process, a redelivery): the row keeps the newer one, and the
        # node still counts as alive.
        _, seen = _row(compute, fake_host)
        admin.upsert_node(fake_host, _report(original, running_vms=42, reported_at=now + 4))
        node, seen_after = _row(compute, fake_host)
        assert node.running_vms == 41 and seen_after >= seen
        # An agent whose clock went back an hour is not frozen out by its own earlier reports.
        admin.upsert_node(fake_host, _report(original, running_vms=43, reported_at=now + 3600))
        admin.upsert_node(fake_host, _report(original, running_vms=44, reported_at=time.time()))
        assert _row(compute, fake_host)[0].running_vms == 44
        # A report that does not say when it was built (an older agent) applies, as before.
        admin.upsert_node(fake_host, _report(original, running_vms=45))
        assert _row(compute, fake_host)[0].running_vms == 45
    finally:
        admin.upsert_node(fake_host, _report(original, reported_at=time.time()))
    assert _row(compute, fake_host)[0].running_vms == original.running_vms


@pytest.mark.unit
@pytest.mark.parametrize("reported_at", ["soon", None, float("nan"), float("inf"), 1e300])
def test_a_report_time_that_is_not_a_time_means_now(reported_at: Any) -> None:
    values = _node_values({"vcpus": 2, "reported_at": reported_at})
    assert values["vcpus"] == 2 and values["updated_at"].year >= 2024
