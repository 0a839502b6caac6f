"""Image sharing: the owner adds member projects to a ``shared`` image; each member accepts or rejects it.
A member sees only its own membership; the owner sees them all."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.image import access, quotas
from tinystack.image.models import Image, ImageMember, utcnow

if TYPE_CHECKING:
    from tinystack.image.service import ImageService


class Membership:
    def __init__(self, svc: ImageService) -> None:
        self.svc = svc

    def _shared(self, s: Session, ctx: RequestContext, image_id: str) -> tuple[Image, ImageMember | None]:
        image, membership = self.svc.find(s, ctx, image_id)
        if image.visibility != "shared":
            raise errors.Forbidden("Only shared images have members.")
        return image, membership

    def _member(self, s: Session, ctx: RequestContext, image: Image, member_id: str) -> ImageMember:
        # Only the owner (or an admin) may look at other projects' memberships.
        found = s.get(ImageMember, (image.id, member_id))
        if found is None or not (ctx.is_admin or access.is_owner(ctx, image) or member_id == ctx.project_id):
            raise errors.NotFound(f"{member_id} not found in the member list of the image {image.id}.")
        return found

    async def add(self, ctx: RequestContext, image_id: str, member_id: str) -> ImageMember:
        def step(s: Session) -> ImageMember:
            image, membership = self._shared(s, ctx, image_id)
            self.svc.enforce_on(ctx, "add_member", image, membership)
            if not (ctx.is_admin or access.is_owner(ctx, image)):
                raise errors.Forbidden(f"Not allowed to create members for image {image_id}.")
            if s.get(ImageMember, (image_id, member_id)) is not None:
                raise errors.Conflict(f"Member {member_id} is duplicated for image {image_id}")
            count = len(s.scalars(select(ImageMember.member).where(ImageMember.image_id == image_id)).all())
            quotas.enforce_per_image(self.svc.limits, members=count + 1)
            now = utcnow()
            member = ImageMember(image_id=image_id, member=member_id, status="pending", created_at=now,
                                 updated_at=now)
            s.add(member)
            return member

        return await self.svc.write(step)

    def list_members(self, ctx: RequestContext, image_id: str) -> list[ImageMember]:
        with self.svc.session() as s:
            image, membership = self._shared(s, ctx, image_id)
            self.svc.enforce_on(ctx, "get_members", image, membership)
            query = select(ImageMember).where(ImageMember.image_id == image_id).order_by(ImageMember.created_at)
            if not (ctx.is_admin or access.is_owner(ctx, image)):
                query = query.where(ImageMember.member == ctx.project_id)
            return list(s.scalars(query).all())

    def get(self, ctx: RequestContext, image_id: str, member_id: str) -> ImageMember:
        with self.svc.session() as s:
            try:
                image, membership = self._shared(s, ctx, image_id)
                self.svc.enforce_on(ctx, "get_member", image, membership)
            except errors.Forbidden as exc:
                # As Glance: do not reveal memberships to whoever may not read them.
                raise errors.NotFound(exc.message) from None
            return self._member(s, ctx, image, member_id)

    async def update(self, ctx: RequestContext, image_id: str, member_id: str, status: str) -> ImageMember:
        def step(s: Session) -> ImageMember:
            image, membership = self._shared(s, ctx, image_id)
            member = self._member(s, ctx, image, member_id)
            if member_id != ctx.project_id and not ctx.is_admin:
                raise errors.Forbidden(f"Not allowed to update members for image {image_id}.")
            self.svc.enforce_on(ctx, "modify_member", image, membership or member)
            member.status = status
            member.updated_at = utcnow()
            return member

        return await self.svc.write(step)

    async def delete(self, ctx: RequestContext, image_id: str, member_id: str) -> None:
        def step(s: Session) -> None:
            image, membership = self._shared(s, ctx, image_id)
            member = self._member(s, ctx, image, member_id)
            if not (ctx.is_admin or access.is_owner(ctx, image)):
                raise errors.Forbidden(f"Not allowed to delete members for image {image_id}.")
            self.svc.enforce_on(ctx, "delete_member", image, membership)
            s.delete(member)

        await self.svc.write(step)
