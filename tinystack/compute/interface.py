"""What other services (block storage) may call on the compute service. ``COMPUTE`` finds it in the registry,
typed by this ``Protocol``."""

from __future__ import annotations

from typing import Any, Protocol

from tinystack.core.auth import RequestContext
from tinystack.core.service import ServiceKey


class ComputeAPI(Protocol):
    def detach_attachment(self, ctx: RequestContext, attachment_id: str) -> bool:
        """Detach the volume whose block storage attachment a server holds; False when no server holds it."""

    async def external_events(self, ctx: RequestContext, request_id: str,
                              events: list[dict[str, Any]]) -> tuple[int, list[dict[str, Any]]]:
        """``os-server-external-events`` (admin): each event with its ``code`` and ``status``, and 200 or 207;
        ``NotFound`` when none is accepted."""


COMPUTE: ServiceKey[ComputeAPI] = ServiceKey("compute")
