"""What other services (compute) may call on the network service: Neutron's request and response dicts, the
caller's context deciding what it sees. ``NETWORK`` finds it in the registry, typed by this ``Protocol``."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any, Protocol

from tinystack.core.auth import RequestContext
from tinystack.core.service import ServiceKey


class NetworkAPI(Protocol):
    def show_network(self, ctx: RequestContext, network_id: str) -> dict[str, Any]:
        """The network as Neutron shows it to ``ctx``; NotFound when it cannot see it."""

    def list_networks(self, ctx: RequestContext, filters: dict[str, Any]) -> builtins.list[dict[str, Any]]:
        """Networks ``ctx`` sees that match ``filters`` (Neutron's query fields)."""

    def create_port(self, ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        """A new port from a ``{"port": {...}}`` body (binding fields need admin); the port as shown."""

    def show_port(self, ctx: RequestContext, port_id: str) -> dict[str, Any]:
        """The port as Neutron shows it to ``ctx``; NotFound when it cannot see it."""

    def update_port(self, ctx: RequestContext, port_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Change the fields of a ``{"port": {...}}`` body; the port as it is afterwards."""

    def delete_port(self, ctx: RequestContext, port_id: str) -> None:
        """Delete the port (its addresses go back to the pool); NotFound when it is gone."""

    def show(self, ctx: RequestContext, plural: str, ident: str) -> dict[str, Any]:
        """Any resource by collection name (``subnets``) and id, as Neutron shows it; NotFound when unseen."""

    def list(self, ctx: RequestContext, plural: str, params: Mapping[str, builtins.list[str]],
             base_url: str) -> dict[str, Any]:
        """One collection (``floatingips``, ``security_groups``, ``ports``) filtered by query ``params``, as
        Neutron's list body ``{plural: [...]}``; ``base_url`` for pagination links ("" for none)."""


NETWORK: ServiceKey[NetworkAPI] = ServiceKey("network")
