"""Service providers (the ``service-type`` extension): which driver serves each advanced service. tinystack
has one: its own L3 router/NAT (network namespaces with iptables/nftables), the default for routers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from tinystack.core.auth import RequestContext
from tinystack.network.readonly import ReadOnly

if TYPE_CHECKING:
    from tinystack.network.service import NetworkService

# (service_type, name, default): only services this cloud really provides.
PROVIDERS = (("L3_ROUTER_NAT", "default", True),)


class ServiceProviders(ReadOnly):
    singular = "service_provider"
    plural = "service_providers"

    def visible(self, svc: NetworkService, s: Session, ctx: RequestContext, ident: str | None = None) -> list[Any]:
        svc.enforce(ctx, "get_service_provider", {"project_id": ctx.project_id})
        rows = [{"service_type": t, "name": n, "default": d} for t, n, d in PROVIDERS]
        return [r for r in rows if ident is None or ident == f"{r['service_type']}:{r['name']}"]

    def render(self, svc: NetworkService, s: Session, ctx: RequestContext, rows: list[Any]) -> list[dict[str, Any]]:
        return [dict(r) for r in rows]
