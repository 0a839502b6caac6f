"""JSON schemas for the Neutron request bodies that are not one of the generic resources (those are checked
attribute by attribute in ``resources.py``)."""

from __future__ import annotations

from typing import Any

# add_router_interface / remove_router_interface: which of the two ids is given is the service's rule; that
# each is a string when given is checked here, before it reaches a query.
ROUTER_INTERFACE: dict[str, Any] = {
    "type": "object",
    "properties": {"subnet_id": {"type": "string"}, "port_id": {"type": "string"}},
}
