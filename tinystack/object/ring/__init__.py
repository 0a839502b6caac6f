"""Consistent-hashing rings for object storage: which devices hold a partition, and how to build that map."""

from tinystack.object.ring.builder import RingBuilder, RingBuilderError
from tinystack.object.ring.device import Device, DeviceSpecError, parse_add_value, parse_search_value
from tinystack.object.ring.fileformat import RingFileError
from tinystack.object.ring.report import Dispersion, RingValidationError, balance, dispersion, validate
from tinystack.object.ring.ring import Ring, hash_path

__all__ = [
    "Device", "DeviceSpecError", "Dispersion", "Ring", "RingBuilder", "RingBuilderError", "RingFileError",
    "RingValidationError", "balance", "dispersion", "hash_path", "parse_add_value", "parse_search_value", "validate",
]
