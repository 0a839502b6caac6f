"""The object storage service as a cloud runs it: the proxy app and, unless ``[object] storage_node = false``,
this machine's storage node started with it (rings first built then)."""

from __future__ import annotations

from dataclasses import dataclass

from tinystack.config import Config
from tinystack.core.auth import TokenValidator
from tinystack.core.web import ServiceApp
from tinystack.object import settings as settings_mod
from tinystack.object.proxy.app import build
from tinystack.object.servers.node import StorageNode
from tinystack.object.settings import ObjectSettings

RESELLER_ADMIN_ROLE = "ResellerAdmin"


@dataclass
class ObjectService:
    """What other parts of a cloud (and tests) may reach: the settings and the storage node this process runs."""

    settings: ObjectSettings
    node: StorageNode | None

    def app(self, validator: TokenValidator) -> ServiceApp:
        if self.node is None:
            return build(self.settings, validator)
        return build(self.settings, validator, on_startup=[self.node.start], on_cleanup=[self.node.stop])


def make(config: Config) -> ObjectService:
    s = settings_mod.load(config)
    return ObjectService(s, StorageNode(s) if s.storage_node else None)
