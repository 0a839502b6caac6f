"""What other services (compute) may call on the image service: image records under the caller's visibility.
``IMAGE`` finds it in the registry, typed by this ``Protocol``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from tinystack.core.auth import RequestContext
from tinystack.core.service import ServiceKey
from tinystack.image.models import Image


class ImageAPI(Protocol):
    def get(self, ctx: RequestContext, image_id: str) -> Image:
        """The image ``ctx`` may see (detached, with properties and tags loaded); NotFound otherwise."""

    def create(self, ctx: RequestContext, body: Any) -> Image:
        """A queued image record from a Glance v2 create body, owned by ``ctx``; data comes later."""

    async def delete(self, ctx: RequestContext, image_id: str) -> None:
        """Delete the record and its data; Forbidden when protected or not ``ctx``'s, NotFound when unseen."""

    def list_images(self, ctx: RequestContext, params: Mapping[str, Any],
                    getall: Any) -> tuple[list[Image], str | None]:
        """One page of the images ``ctx`` sees for Glance query ``params``, and the next page's marker."""


IMAGE: ServiceKey[ImageAPI] = ServiceKey("image")
