"""The compute service: the one object the API, the conductor and other services use. It holds the shared
handles and helpers; the rules live in one module per concept (flavors, keypairs, quotas, servers, actions)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinystack.compute import policies
from tinystack.compute import settings as settings_mod
from tinystack.config import Config
from tinystack.core.auth import RequestContext
from tinystack.core.bus import Bus
from tinystack.core.db import Database
from tinystack.core.policy import PolicyEngine
from tinystack.core.service import ServiceBase
from tinystack.image.interface import IMAGE
from tinystack.network.interface import NETWORK

if TYPE_CHECKING:
    from tinystack.compute.models import Instance

MIGRATIONS = Path(__file__).parent / "migrations"


class ComputeService(ServiceBase):
    def __init__(self, config: Config, db: Database, bus: Bus, policy: PolicyEngine,
                 services: Mapping[str, Any]) -> None:
        super().__init__(db, policy, services)
        self.config = config
        self.settings = settings_mod.load(config)
        self.bus = bus
        policy.register_defaults(policies.DEFAULTS)
        from tinystack.compute.actions import Actions
        from tinystack.compute.admin import Admin
        from tinystack.compute.bootvolumes import BootVolumes
        from tinystack.compute.conductor import Conductor
        from tinystack.compute.consoles import Consoles
        from tinystack.compute.events import ExternalEvents
        from tinystack.compute.extras import Subresources
        from tinystack.compute.flavors import Flavors
        from tinystack.compute.keypairs import Keypairs
        from tinystack.compute.lifecycle import Lifecycle
        from tinystack.compute.netbind import NetBinder
        from tinystack.compute.placing import Placer
        from tinystack.compute.quotas import Quotas
        from tinystack.compute.servers import Servers
        from tinystack.compute.volumes import Volumes

        self.flavors = Flavors(self)
        self.keypairs = Keypairs(self)
        self.quotas = Quotas(self)
        self.servers = Servers(self)
        self.actions = Actions(self)
        self.admin = Admin(self)
        self.subres = Subresources(self)
        self.volumes = Volumes(self)
        self.bootvolumes = BootVolumes(self)
        self.placer = Placer(self)
        self.net = NetBinder(lambda: self.service(NETWORK) if self.has(NETWORK) else None)
        self.conductor = Conductor(
            db=db, bus=bus, placer=self.placer, net=self.net, hosts=self.admin, volumes=self.volumes,
            bootvolumes=self.bootvolumes, config_drive_files=self._config_drive_files,
            console_log_max_bytes=self.settings.console_log_max_bytes, sync_interval=config.sync_interval,
            orphan_build_after=self.settings.orphan_build_after, build_timeout=self.settings.build_timeout)
        self.lifecycle = Lifecycle(
            session=self.session, enforce=self.enforce, servers=self.servers, actions=self.actions,
            flavors=self.flavors, quotas=self.quotas, keypairs=self.keypairs, hosts=self.admin,
            images=lambda: self.service(IMAGE), placer=self.placer, conductor=self.conductor)
        self.events = ExternalEvents(self)
        self.consoles = Consoles(self)  # the console proxy asks it where an instance's consoles are

    def _config_drive_files(self, inst: Instance) -> dict[str, Any]:
        """The config drive's files for ``inst``, made by the metadata service from the instance's view."""
        from tinystack.compute.instancemeta import instance_dict

        return dict(self.service("metadata").config_drive_files(instance_dict(self, inst, (inst.flavor or {}).get("name"))))

    def get_instance_metadata(self, instance_id: str) -> dict[str, Any] | None:
        """The metadata service's view of one live instance (tinystack/metadata/documents.py's dict)."""
        from tinystack.compute.instancemeta import instance_dict
        from tinystack.compute.models import Instance

        with self.session() as s:
            inst = s.get(Instance, instance_id)
            if inst is None or inst.deleted:
                return None
            s.expunge(inst)
        return instance_dict(self, inst, (inst.flavor or {}).get("name"))

    def set_instance_password(self, instance_id: str, password: str) -> bool:
        """Store the guest-posted (encrypted) password once; False when one is already set (Nova's 409)."""
        from tinystack.compute.models import Instance

        with self.session() as s:
            inst = s.get(Instance, instance_id)
            if inst is None or inst.deleted:
                return False
            meta = dict(inst.meta or {})
            if meta.get("password_0"):
                return False
            meta["password_0"] = password
            inst.meta = meta
        return True

    async def external_events(self, ctx: RequestContext, request_id: str,
                              events: list[dict[str, Any]]) -> tuple[int, list[dict[str, Any]]]:
        """``os-server-external-events``: tinystack/compute/events.py."""
        return await self.events.create(ctx, request_id, events)

    def detach_attachment(self, ctx: RequestContext, attachment_id: str) -> bool:
        """Detach, as ``server remove volume`` does, the volume whose block storage attachment a server holds
        (block storage's attachment delete comes here, so both sides agree); False when no server holds it."""
        from sqlalchemy import select

        from tinystack.compute.models import BlockDeviceMapping
        from tinystack.core import log

        with self.session() as s:
            bdm = s.scalar(select(BlockDeviceMapping).where(BlockDeviceMapping.attachment_id == attachment_id))
            if bdm is None:
                return False
            server_id, volume_id = bdm.instance_uuid, bdm.volume_id
        rid = ctx.request_id or log.request_id.get()
        self.volumes.detach(ctx, server_id, rid if rid != "-" else f"req-{uuid.uuid4()}", volume_id)
        return True
