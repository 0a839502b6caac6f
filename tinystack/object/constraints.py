"""Swift's limits on names, metadata and requests (the values /info publishes), and the checks that enforce them."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from tinystack.object.common import status_error

MAX_META_NAME_LENGTH = 128
MAX_META_VALUE_LENGTH = 256
MAX_META_COUNT = 90
MAX_META_OVERALL_SIZE = 4096
MAX_HEADER_SIZE = 8192
MAX_OBJECT_NAME_LENGTH = 1024
MAX_ACCOUNT_NAME_LENGTH = 256
MAX_CONTAINER_NAME_LENGTH = 256
MAX_HEADER_COUNT = 100


def info(max_file_size: int, container_listing_limit: int, account_listing_limit: int) -> dict[str, Any]:
    """The ``swift`` section of /info."""
    return {
        "max_file_size": max_file_size, "max_meta_name_length": MAX_META_NAME_LENGTH,
        "max_meta_value_length": MAX_META_VALUE_LENGTH, "max_meta_count": MAX_META_COUNT,
        "max_meta_overall_size": MAX_META_OVERALL_SIZE, "max_header_size": MAX_HEADER_SIZE,
        "max_object_name_length": MAX_OBJECT_NAME_LENGTH, "container_listing_limit": container_listing_limit,
        "account_listing_limit": account_listing_limit, "max_account_name_length": MAX_ACCOUNT_NAME_LENGTH,
        "max_container_name_length": MAX_CONTAINER_NAME_LENGTH, "extra_header_count": 0,
        "valid_api_versions": ["v1", "v1.0"], "strict_cors_mode": True, "allow_account_management": False,
        "account_autocreate": True,
    }


def check_container_name(name: str) -> None:
    if not name:
        raise status_error(400, "Container name is required")
    if "/" in name:
        raise status_error(400, "Container name cannot contain slashes")
    if len(name.encode()) > MAX_CONTAINER_NAME_LENGTH:
        raise status_error(400, f"Container name length of {len(name.encode())} longer than {MAX_CONTAINER_NAME_LENGTH}")


def check_object_name(name: str) -> None:
    if len(name.encode()) > MAX_OBJECT_NAME_LENGTH:
        raise status_error(400, f"Object name length of {len(name.encode())} longer than {MAX_OBJECT_NAME_LENGTH}")


def check_metadata(headers: Mapping[str, str], target: str) -> None:
    """``X-<target>-Meta-*`` within Swift's limits: 400 otherwise (names, values, count, overall size)."""
    prefix = f"x-{target}-meta-"
    count = size = 0
    for key, value in headers.items():
        low = key.lower()
        if not low.startswith(prefix):
            continue
        name = low[len(prefix):]
        if not name:
            raise status_error(400, "Metadata name cannot be empty")
        count += 1
        size += len(name.encode()) + len(value.encode())
        if len(name.encode()) > MAX_META_NAME_LENGTH:
            raise status_error(400, f"Metadata name too long: {name}; max {MAX_META_NAME_LENGTH}")
        if len(value.encode()) > MAX_META_VALUE_LENGTH:
            raise status_error(400, f"Metadata value longer than {MAX_META_VALUE_LENGTH}: {name}")
        if count > MAX_META_COUNT:
            raise status_error(400, f"Too many metadata items; max {MAX_META_COUNT}")
        if size > MAX_META_OVERALL_SIZE:
            raise status_error(400, f"Total metadata too large; max {MAX_META_OVERALL_SIZE}")


def check_delete_headers(headers: Mapping[str, str], timestamp: float) -> int | None:
    """The object's expiry time from ``X-Delete-At`` or ``X-Delete-After``; 400 when malformed or in the past."""
    after = headers.get("X-Delete-After")
    if after is not None:
        try:
            seconds = int(after)
        except ValueError:
            raise status_error(400, "Non-integer X-Delete-After") from None
        if seconds <= 0:
            raise status_error(400, "X-Delete-After in past")
        return int(timestamp + seconds)
    at = headers.get("X-Delete-At")
    if at is None:
        return None
    try:
        when = int(at)
    except ValueError:
        raise status_error(400, "Non-integer X-Delete-At") from None
    if when <= time.time():
        raise status_error(400, "X-Delete-At in past")
    return when
