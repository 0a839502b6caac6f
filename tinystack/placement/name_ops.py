"""The trait and resource class operations of the placement API: the standard names and the custom ones
operators add."""

from __future__ import annotations

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.placement import catalog
from tinystack.placement.base import PlacementBase


class NameOps(PlacementBase):
    # --- traits -----------------------------------------------------------------------------------

    def list_traits(self, ctx: RequestContext, name_filter: str | None, associated: bool | None) -> list[str]:
        self.authorize(ctx, "traits:list")
        with self.session() as s:
            return catalog.list_traits(s, name_filter, associated)

    def show_trait(self, ctx: RequestContext, name: str) -> None:
        """Nothing when the trait exists; 404 otherwise."""
        self.authorize(ctx, "traits:show")
        with self.session() as s:
            if not catalog.trait_exists(s, name):
                raise errors.NotFound(f"No such trait(s): {name}.")

    async def put_trait(self, ctx: RequestContext, name: str) -> bool:
        """Create a custom trait; False when it already existed."""
        self.authorize(ctx, "traits:update")
        return await self.write(lambda s: catalog.put_trait(s, name))

    async def delete_trait(self, ctx: RequestContext, name: str) -> None:
        self.authorize(ctx, "traits:delete")
        await self.write(lambda s: catalog.delete_trait(s, name))

    # --- resource classes ------------------------------------------------------------------------------

    def list_classes(self, ctx: RequestContext) -> list[str]:
        self.authorize(ctx, "resource_classes:list")
        with self.session() as s:
            return catalog.list_resource_classes(s)

    def show_class(self, ctx: RequestContext, name: str) -> str:
        self.authorize(ctx, "resource_classes:show")
        with self.session() as s:
            if not catalog.resource_class_exists(s, name):
                raise errors.NotFound(f"No such resource class {name}.")
        return name

    async def create_class(self, ctx: RequestContext, name: str) -> str:
        """POST: a new custom class; 409 when it exists."""
        self.authorize(ctx, "resource_classes:create")
        await self.write(lambda s: catalog.create_resource_class(s, name))
        return name

    async def ensure_class(self, ctx: RequestContext, name: str) -> bool:
        """PUT from 1.7: the custom class exists afterwards; True when this call created it."""
        self.authorize(ctx, "resource_classes:update")
        return await self.write(lambda s: catalog.create_resource_class(s, name, exist_ok=True))

    async def rename_class(self, ctx: RequestContext, old: str, new: str) -> str:
        """PUT before 1.7: a custom class, not in use, under a new name."""
        self.authorize(ctx, "resource_classes:update")
        await self.write(lambda s: catalog.rename_resource_class(s, old, new))
        return new

    async def delete_class(self, ctx: RequestContext, name: str) -> None:
        self.authorize(ctx, "resource_classes:delete")
        await self.write(lambda s: catalog.delete_resource_class(s, name))
