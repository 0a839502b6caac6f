"""Default placement policy rules under placement's own names: everything is for admins (and services)."""

from __future__ import annotations

ADMIN = "role:admin"

_RULES = (
    "resource_providers:list", "resource_providers:create", "resource_providers:show", "resource_providers:update",
    "resource_providers:delete",
    "resource_providers:inventories:list", "resource_providers:inventories:create",
    "resource_providers:inventories:show", "resource_providers:inventories:update",
    "resource_providers:inventories:delete",
    "resource_providers:aggregates:list", "resource_providers:aggregates:update",
    "resource_providers:usages", "usages",
    "traits:list", "traits:show", "traits:update", "traits:delete",
    "resource_providers:traits:list", "resource_providers:traits:update", "resource_providers:traits:delete",
    "allocations:list", "allocations:manage", "allocations:update", "allocations:delete",
    "resource_providers:allocations:list",
    "allocation_candidates:list",
    "resource_classes:list", "resource_classes:create", "resource_classes:show", "resource_classes:update",
    "resource_classes:delete",
)

DEFAULTS: dict[str, str] = {f"placement:{name}": ADMIN for name in _RULES}
