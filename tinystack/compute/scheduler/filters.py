"""Host filters: one predicate each, chained. ``applies`` says whether a request needs the filter at all,
so filters a request does not use cost nothing per host (Nova's filters return True early instead).

``key`` says what of the request a filter's answer depends on besides the host state, so the scheduler
can keep the hosts that pass for equal keys until host states change; ``None`` means the answer also
depends on where other servers went (server groups) and is worked out per host every time."""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Callable, Hashable
from typing import Protocol

from tinystack.compute.scheduler import HostState, RequestSpec


class HostFilter(Protocol):
    name: str

    def applies(self, spec: RequestSpec) -> bool: ...

    def passes(self, host: HostState, spec: RequestSpec) -> bool: ...

    def key(self, spec: RequestSpec) -> Hashable | None: ...


class ComputeFilter:
    """The compute service on the host is enabled and up."""

    name = "ComputeFilter"

    def applies(self, spec: RequestSpec) -> bool:
        return True

    def passes(self, host: HostState, spec: RequestSpec) -> bool:
        return host.enabled and host.up

    def key(self, spec: RequestSpec) -> Hashable | None:
        return ()


class AvailabilityZoneFilter:
    name = "AvailabilityZoneFilter"

    def applies(self, spec: RequestSpec) -> bool:
        return bool(spec.availability_zone)

    def passes(self, host: HostState, spec: RequestSpec) -> bool:
        return host.availability_zone == spec.availability_zone

    def key(self, spec: RequestSpec) -> Hashable | None:
        return spec.availability_zone


class ForcedHostFilter:
    """An admin's ``az:host[:node]`` places on exactly that host (and node)."""

    name = "ForcedHostFilter"

    def applies(self, spec: RequestSpec) -> bool:
        return bool(spec.force_host or spec.force_node)

    def passes(self, host: HostState, spec: RequestSpec) -> bool:
        if spec.force_host and host.host != spec.force_host:
            return False
        return not spec.force_node or (host.node or host.host) == spec.force_node

    def key(self, spec: RequestSpec) -> Hashable | None:
        return (spec.force_host, spec.force_node)


def _image_arch(spec: RequestSpec) -> str | None:
    arch = spec.image_properties.get("hw_architecture") or spec.image_properties.get("architecture")
    return str(arch).lower() if arch else None


def _image_hv(spec: RequestSpec) -> str | None:
    hv = spec.image_properties.get("img_hv_type") or spec.image_properties.get("hypervisor_type")
    return str(hv).lower() if hv else None


# Nova's canonical names: a kvm image runs on a QEMU host that has KVM, and "qemu" images run on either.
_HV_ALIASES = {"kvm": {"kvm", "qemu"}, "qemu": {"qemu", "kvm"}}
_ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64", "i386": "i686"}


class ImagePropertiesFilter:
    """The image's architecture and hypervisor type are ones the host supports."""

    name = "ImagePropertiesFilter"

    def applies(self, spec: RequestSpec) -> bool:
        return bool(_image_arch(spec) or _image_hv(spec))

    def passes(self, host: HostState, spec: RequestSpec) -> bool:
        arch = _image_arch(spec)
        if arch and _ARCH_ALIASES.get(arch, arch) != host.architecture.lower():
            return False
        hv = _image_hv(spec)
        return not hv or host.hypervisor_type.lower() in _HV_ALIASES.get(hv, {hv})

    def key(self, spec: RequestSpec) -> Hashable | None:
        return (_image_arch(spec), _image_hv(spec))


def _numeric(op: Callable[[float, float], bool]) -> Callable[[str, str], bool]:
    def check(have: str, want: str) -> bool:
        try:
            return op(float(have), float(want))
        except ValueError:
            return False

    return check


# Nova's extra_specs_ops: "<op> value" compared with each of the host's values for the key.
_OPS: dict[str, Callable[[str, str], bool]] = {
    "=": _numeric(operator.ge),  # Nova's "=" means "at least"
    "==": _numeric(operator.eq), "!=": _numeric(operator.ne), ">=": _numeric(operator.ge), "<=": _numeric(operator.le),
    "s==": operator.eq, "s!=": operator.ne, "s>=": operator.ge, "s<=": operator.le, "s>": operator.gt, "s<": operator.lt,
    "<in>": lambda have, want: want in have,
}


def matches(have: str, requirement: str) -> bool:
    """One host value against one extra spec value (plain equality, ``<or>`` lists, or an operator)."""
    words = requirement.split()
    if not words:
        return have == requirement
    if words[0] == "<or>":
        return have in words[1::2]
    if words[0] in _OPS and len(words) >= 2:
        return _OPS[words[0]](have, " ".join(words[1:]))
    return have == requirement


def _aggregate_specs(spec: RequestSpec) -> dict[str, str]:
    out = {}
    for key, value in spec.flavor.extra_specs.items():
        scope, _, rest = key.partition(":")
        if not rest:
            out[key] = str(value)
        elif scope == "aggregate_instance_extra_specs":
            out[rest] = str(value)
    return out


class AggregateInstanceExtraSpecsFilter:
    """Flavor extra specs (unscoped, or ``aggregate_instance_extra_specs:``) match the host's aggregate metadata."""

    name = "AggregateInstanceExtraSpecsFilter"

    def applies(self, spec: RequestSpec) -> bool:
        return bool(_aggregate_specs(spec))

    def passes(self, host: HostState, spec: RequestSpec) -> bool:
        for key, requirement in _aggregate_specs(spec).items():
            values = {str(a.metadata[key]) for a in host.aggregates if key in a.metadata}
            if not values or not any(matches(v, requirement) for v in values):
                return False
        return True

    def key(self, spec: RequestSpec) -> Hashable | None:
        return tuple(sorted(_aggregate_specs(spec).items()))


class ServerGroupAffinityFilter:
    """``affinity``: once a member runs somewhere, the others go to that host."""

    name = "ServerGroupAffinityFilter"

    def applies(self, spec: RequestSpec) -> bool:
        g = spec.server_group
        return g is not None and g.policy == "affinity" and bool(g.hosts)

    def passes(self, host: HostState, spec: RequestSpec) -> bool:
        assert spec.server_group is not None
        return host.host in spec.server_group.hosts

    def key(self, spec: RequestSpec) -> Hashable | None:
        return None


class ServerGroupAntiAffinityFilter:
    """``anti-affinity``: at most ``max_server_per_host`` members on one host."""

    name = "ServerGroupAntiAffinityFilter"

    def applies(self, spec: RequestSpec) -> bool:
        g = spec.server_group
        return g is not None and g.policy == "anti-affinity" and bool(g.hosts)

    def passes(self, host: HostState, spec: RequestSpec) -> bool:
        g = spec.server_group
        assert g is not None
        return Counter(g.hosts)[host.host] < g.max_server_per_host

    def key(self, spec: RequestSpec) -> Hashable | None:
        return None


DEFAULT_FILTERS: tuple[HostFilter, ...] = (
    ForcedHostFilter(), ComputeFilter(), AvailabilityZoneFilter(), ImagePropertiesFilter(),
    AggregateInstanceExtraSpecsFilter(), ServerGroupAffinityFilter(), ServerGroupAntiAffinityFilter(),
)
