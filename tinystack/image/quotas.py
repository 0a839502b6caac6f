"""Per-project image quotas (Glance's unified-limit names) and per-image limits; -1 means unlimited."""

from __future__ import annotations

from dataclasses import dataclass

from tinystack.image.errors import QuotaExceeded
from tinystack.image.settings import ImageSettings


@dataclass(frozen=True)
class Limits:
    image_count_total: int
    image_size_total: int
    image_count_uploading: int
    image_stage_total: int
    image_size_cap: int
    members: int
    properties: int
    tags: int

    @classmethod
    def from_settings(cls, s: ImageSettings) -> Limits:
        return cls(s.quota_image_count_total, s.quota_image_size_total, s.quota_image_count_uploading,
                   s.quota_image_stage_total, s.image_size_cap, s.image_member_quota, s.image_property_quota,
                   s.image_tag_quota)


@dataclass(frozen=True)
class Usage:
    """What a project holds: images, bytes stored, uploads in flight, bytes staged for import."""

    image_count_total: int = 0
    image_size_total: int = 0
    image_count_uploading: int = 0
    image_stage_total: int = 0


def enforce(resource: str, limit: int, usage: int, delta: int) -> None:
    """Refuse (413) when ``usage + delta`` would exceed ``limit``."""
    if limit >= 0 and delta > 0 and usage + delta > limit:
        raise QuotaExceeded(f"Resource {resource} is over limit of {limit} due to current usage {usage} "
                            f"and delta {delta}")


def remaining(limit: int, usage: int) -> int | None:
    """Bytes (or items) still allowed; None when unlimited."""
    return None if limit < 0 else max(0, limit - usage)


def enforce_per_image(limits: Limits, members: int | None = None, properties: int | None = None,
                      tags: int | None = None) -> None:
    """Glance's image_member_quota, image_property_quota and image_tag_quota."""
    for what, count, limit in (("image members", members, limits.members),
                               ("image properties", properties, limits.properties),
                               ("image tags", tags, limits.tags)):
        if count is not None and 0 <= limit < count:
            raise QuotaExceeded(f"Maximum number of {what} exceeded: {count} > {limit}")
