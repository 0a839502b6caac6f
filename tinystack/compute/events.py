"""Server external events (Nova's ``os-server-external-events``): what other services tell compute about a
server. Each event is answered on its own (200 accepted, 404 no such server, 400 a tag it needs is missing, 422
the server has no host); the request is 404 when none is accepted and 207 when some are not.

Accepted events act through desired state, so a lost bus message costs one sync, not the event:
``volume-extended`` (2.51) puts the volume's new size into the server's block device mapping, and the instance
document carries it to the compute agent, which grows the running guest's disk (QMP ``block_resize``);
``network-changed`` reads the server's ports again; the others are accepted and logged, as Nova's libvirt
driver does with events it has no use for.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from tinystack.compute.models import BlockDeviceMapping, Instance, utcnow
from tinystack.core import desired, errors
from tinystack.core.auth import RequestContext
from tinystack.core.service import elevated
from tinystack.volume.interface import VOLUME

if TYPE_CHECKING:
    from tinystack.compute.service import ComputeService

log = logging.getLogger(__name__)
POLICY = "os_compute_api:os-server-external-events:create"
# Events that mean nothing without a tag (Nova's TAG_REQUIRED).
TAG_REQUIRED = ("volume-extended", "power-update", "accelerator-request-bound")
NETWORK_EVENTS_TOPIC = "events.network"


class ExternalEvents:
    def __init__(self, svc: ComputeService) -> None:
        self.svc = svc

    async def create(self, ctx: RequestContext, request_id: str,
                     events: list[dict[str, Any]]) -> tuple[int, list[dict[str, Any]]]:
        """Answer each event; ``NotFound`` when none could be accepted. Returns (200 or 207, the events with
        their ``code`` and ``status``)."""
        self.svc.enforce(ctx, POLICY, {})
        wanted = {str(e["server_uuid"]) for e in events}
        with self.svc.session() as s:
            hosts = {i.id: i.host for i in s.scalars(select(Instance).where(Instance.id.in_(wanted),
                                                                          Instance.deleted.is_(False)))}
        answered: list[dict[str, Any]] = []
        accepted: list[dict[str, Any]] = []
        for event in events:
            out = {**event, "status": event.get("status", "completed")}
            sid = str(event["server_uuid"])
            if sid not in hosts:
                log.debug("dropping event %s:%s for unknown server %s", event["name"], event.get("tag"), sid)
                out.update(code=404, status="failed")
            elif event["name"] in TAG_REQUIRED and event.get("tag") is None:
                out.update(code=400, status="failed")
            elif not hosts[sid]:
                out.update(code=422, status="failed")
            else:
                out["code"] = 200
                accepted.append(out)
            answered.append(out)
        if not accepted:
            raise errors.NotFound("No instances found for any event")
        for event in accepted:
            await self._handle(ctx, request_id, event)
        return (200 if len(accepted) == len(answered) else 207), answered

    async def _handle(self, ctx: RequestContext, request_id: str, event: dict[str, Any]) -> None:
        sid, name, tag = str(event["server_uuid"]), str(event["name"]), event.get("tag")
        if name == "volume-extended" and event["status"] == "completed":
            self.volume_extended(ctx, request_id, sid, str(tag))
        elif name == "network-changed":
            # The conductor's own handler, through the topic the network controller uses for the same event.
            await self.svc.bus.publish(NETWORK_EVENTS_TOPIC, {"name": name, "server_uuid": sid, "tag": tag})
        else:
            log.info("server %s: event %s (%s, tag %s) accepted; nothing to do for it here", sid, name,
                     event["status"], tag)

    def volume_extended(self, ctx: RequestContext, request_id: str, sid: str, volume_id: str) -> None:
        """Record the volume's size as the volume service has it now in the server's mapping, and move the
        server's desired state so its agent grows the guest's disk. Nothing when the server does not have it
        (detached meanwhile): Nova's compute logs that and goes on."""
        try:
            size = int(self.svc.service(VOLUME).get(elevated(ctx), volume_id)["size"])
        except errors.NotFound:
            log.warning("server %s: volume-extended for volume %s, which is gone", sid, volume_id)
            return

        def attempt() -> str | None:
            with self.svc.session() as s:
                inst = s.get(Instance, sid)
                bdm = s.scalar(select(BlockDeviceMapping).where(BlockDeviceMapping.instance_uuid == sid,
                                                                BlockDeviceMapping.volume_id == volume_id))
                if inst is None or inst.deleted or bdm is None:
                    return None
                if int((bdm.connection or {}).get("size_gb") or 0) >= size:
                    return inst.host  # told twice: the document has it already
                desired.bump_or_lose(s, Instance, sid, inst.generation, {"updated_at": utcnow()})
                bdm.connection = {**(bdm.connection or {}), "size_gb": size}
                self.svc.actions.record(s, ctx, sid, "extend_volume", request_id)
                self.svc.actions.finish(s, sid, "Success", inst.host, action="extend_volume")
                return inst.host

        host = desired.retry(attempt, what=f"Instance {sid}")
        if host is None:
            log.warning("server %s: volume-extended for volume %s, which it does not have", sid, volume_id)
            return
        log.info("server %s: volume %s is now %d GiB", sid, volume_id, size)
        self.svc.conductor.publish_soon(sid)
