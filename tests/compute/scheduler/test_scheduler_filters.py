"""Each scheduler filter on its own: when it applies, and which hosts pass."""

from __future__ import annotations

from typing import Any

from tinystack.compute.scheduler import Aggregate, Flavor, HostState, RequestSpec, ServerGroup
from tinystack.compute.scheduler import filters as f


def spec(**kw: Any) -> RequestSpec:
    flavor = kw.pop("flavor", Flavor(1, 512, 1))
    return RequestSpec(flavor, "p", "u", ["i1"], **kw)


def host(name: str = "h1", **kw: Any) -> HostState:
    return HostState(name, f"rp-{name}", **kw)


def test_compute_filter() -> None:
    assert f.ComputeFilter().passes(host(), spec())
    assert not f.ComputeFilter().passes(host(enabled=False), spec())
    assert not f.ComputeFilter().passes(host(up=False), spec())


def test_availability_zone_filter() -> None:
    flt = f.AvailabilityZoneFilter()
    assert not flt.applies(spec())
    s = spec(availability_zone="az1")
    assert flt.passes(host(availability_zone="az1"), s)
    assert not flt.passes(host(availability_zone="nova"), s)


def test_forced_host_filter() -> None:
    flt = f.ForcedHostFilter()
    assert not flt.applies(spec())
    s = spec(force_host="h2")
    assert flt.passes(host("h2"), s) and not flt.passes(host("h1"), s)
    s = spec(force_host="h2", force_node="node-b")
    assert flt.passes(host("h2", node="node-b"), s) and not flt.passes(host("h2", node="node-a"), s)


def test_image_properties_filter() -> None:
    flt = f.ImagePropertiesFilter()
    assert not flt.applies(spec())
    arm = spec(image_properties={"hw_architecture": "aarch64"})
    assert not flt.passes(host(), arm) and flt.passes(host(architecture="aarch64"), arm)
    assert flt.passes(host(), spec(image_properties={"architecture": "amd64"}))  # an alias of x86_64
    assert flt.passes(host(hypervisor_type="QEMU"), spec(image_properties={"img_hv_type": "kvm"}))
    assert not flt.passes(host(hypervisor_type="QEMU"), spec(image_properties={"img_hv_type": "xen"}))


def test_aggregate_instance_extra_specs_filter() -> None:
    flt = f.AggregateInstanceExtraSpecsFilter()
    ssd = host(aggregates=(Aggregate("a1", "fast", {"ssd": "true", "cores": "16"}),))
    plain = host("h2")
    assert not flt.applies(spec(flavor=Flavor(1, 512, 1, extra_specs={"trait:X": "required"})))
    want = spec(flavor=Flavor(1, 512, 1, extra_specs={"aggregate_instance_extra_specs:ssd": "true"}))
    assert flt.passes(ssd, want) and not flt.passes(plain, want)
    unscoped = spec(flavor=Flavor(1, 512, 1, extra_specs={"cores": ">= 8"}))
    assert flt.passes(ssd, unscoped)
    assert not flt.passes(ssd, spec(flavor=Flavor(1, 512, 1, extra_specs={"cores": ">= 32"})))
    assert flt.passes(ssd, spec(flavor=Flavor(1, 512, 1, extra_specs={"ssd": "<or> false <or> true"})))


def test_server_group_filters() -> None:
    aff, anti = f.ServerGroupAffinityFilter(), f.ServerGroupAntiAffinityFilter()
    first = spec(server_group=ServerGroup("g", "affinity"))
    assert not aff.applies(first)  # the first member may go anywhere
    s = spec(server_group=ServerGroup("g", "affinity", ("h1",)))
    assert aff.passes(host("h1"), s) and not aff.passes(host("h2"), s)
    s = spec(server_group=ServerGroup("g", "anti-affinity", ("h1",)))
    assert anti.applies(s) and not anti.passes(host("h1"), s) and anti.passes(host("h2"), s)
    s = spec(server_group=ServerGroup("g", "anti-affinity", ("h1",), max_server_per_host=2))
    assert anti.passes(host("h1"), s)
    assert not aff.applies(spec(server_group=ServerGroup("g", "soft-affinity", ("h1",))))
