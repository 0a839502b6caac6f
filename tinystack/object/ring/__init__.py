"""Consistent-hashing rings for object storage: which devices hold a partition, and how to build that map.

The names below are loaded on first use: a server only reads rings (``ring.py``), and the builder's modules
(numpy among them, some 13 MB) stay out of every process that never builds or reports on one."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tinystack.object.ring.builder import RingBuilder, RingBuilderError
    from tinystack.object.ring.device import Device, DeviceSpecError, parse_add_value, parse_search_value
    from tinystack.object.ring.fileformat import RingFileError
    from tinystack.object.ring.report import Dispersion, RingValidationError, balance, dispersion, validate
    from tinystack.object.ring.ring import Ring, hash_path

_WHERE = {
    "RingBuilder": "builder", "RingBuilderError": "builder",
    "Device": "device", "DeviceSpecError": "device", "parse_add_value": "device", "parse_search_value": "device",
    "RingFileError": "fileformat",
    "Dispersion": "report", "RingValidationError": "report", "balance": "report", "dispersion": "report",
    "validate": "report",
    "Ring": "ring", "hash_path": "ring",
}

__all__ = [
    "Device", "DeviceSpecError", "Dispersion", "Ring", "RingBuilder", "RingBuilderError", "RingFileError",
    "RingValidationError", "balance", "dispersion", "hash_path", "parse_add_value", "parse_search_value", "validate",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
