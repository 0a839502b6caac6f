"""The registry of Neutron collections, by their plural name."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tinystack.network.service import Resource


def build() -> dict[str, Resource]:
    from tinystack.network.addressscopes import AddressScopes
    from tinystack.network.floatingips import FloatingIPs
    from tinystack.network.networks import Networks
    from tinystack.network.ports import Ports
    from tinystack.network.routers import Routers
    from tinystack.network.securitygroups import SecurityGroupRules, SecurityGroups
    from tinystack.network.segments import Segments
    from tinystack.network.serviceproviders import ServiceProviders
    from tinystack.network.subnetpools import SubnetPools
    from tinystack.network.subnets import Subnets
    from tinystack.network.trunks import Trunks

    items: list[Resource] = [Networks(), Subnets(), SubnetPools(), Ports(), Routers(), FloatingIPs(),
                             SecurityGroups(), SecurityGroupRules(), ServiceProviders(), Segments(), AddressScopes(),
                             Trunks()]
    return {r.plural: r for r in items}
