"""The object storage service as a cloud runs it: the proxy app and, unless ``[object] storage_node = false``,
this machine's storage node started with it (rings first built then)."""

from __future__ import annotations

from tinystack.config import Config
from tinystack.core.auth import TokenValidator
from tinystack.core.web import ServiceApp
from tinystack.object import settings as settings_mod
from tinystack.object.proxy.app import build
from tinystack.object.servers.node import StorageNode


def proxy_app(config: Config, validator: TokenValidator) -> ServiceApp:
    s = settings_mod.load(config)
    if not s.storage_node:
        return build(s, validator)
    node = StorageNode(s)
    return build(s, validator, on_startup=[node.start], on_cleanup=[node.stop])
