"""Network segments (the ``segment`` extension), read-only: each network has exactly one segment, made of its
provider attributes. Its id is derived from the network's, so it is stable without a table of its own."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from tinystack.core.auth import RequestContext
from tinystack.network.common import iso
from tinystack.network.models import Network
from tinystack.network.networks import Networks
from tinystack.network.readonly import ReadOnly

if TYPE_CHECKING:
    from tinystack.network.service import NetworkService

_NAMESPACE = uuid.UUID("6d1c1f3e-8f0a-4b7e-9a51-2f4c3c0b7a10")


def segment_id(network_id: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, network_id))


class Segments(ReadOnly):
    singular = "segment"
    plural = "segments"

    def visible(self, svc: NetworkService, s: Session, ctx: RequestContext, ident: str | None = None) -> list[Any]:
        svc.enforce(ctx, "get_segment", {"project_id": ctx.project_id})
        # A segment is seen by whoever sees its network.
        nets = Networks().visible(svc, s, ctx)
        return [n for n in nets if ident is None or segment_id(n.id) == ident]

    def render(self, svc: NetworkService, s: Session, ctx: RequestContext, rows: list[Any]) -> list[dict[str, Any]]:
        physnet = svc.allowed(ctx, "get_segment:physical_network", {})
        segid = svc.allowed(ctx, "get_segment:segmentation_id", {})
        return [self._one(r, physnet, segid) for r in rows]

    @staticmethod
    def _one(net: Network, physnet: bool, segid: bool) -> dict[str, Any]:
        return {"id": segment_id(net.id), "network_id": net.id, "name": None, "description": "",
                "network_type": net.network_type, "physical_network": net.physical_network if physnet else None,
                "segmentation_id": net.segmentation_id if segid else None, "revision_number": 0,
                "created_at": iso(net.created_at), "updated_at": iso(net.updated_at), "tags": []}
