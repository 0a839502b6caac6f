"""Who may see an image, and the policy target describing it (Glance's rules)."""

from __future__ import annotations

from typing import Any

from tinystack.core.auth import RequestContext
from tinystack.image.models import Image, ImageMember


def can_see(ctx: RequestContext, image: Image, membership: ImageMember | None) -> bool:
    """Admins see everything; others see public and community images, their own, and shared images they
    are a member of (whatever the member status)."""
    if ctx.is_admin or image.owner is None:
        return True
    if image.visibility in ("public", "community"):
        return True
    if ctx.project_id is not None and image.owner == ctx.project_id:
        return True
    return image.visibility == "shared" and membership is not None


def is_owner(ctx: RequestContext, image: Image) -> bool:
    return ctx.project_id is not None and image.owner == ctx.project_id


def target(ctx: RequestContext, image: Image, membership: ImageMember | None) -> dict[str, Any]:
    return {"project_id": image.owner, "owner": image.owner, "visibility": image.visibility,
            "member_id": membership.member if membership is not None else None, "image_id": image.id}
