"""The tasks API (``/v2/tasks``): the record of every import, for operators. Glance keeps it behind
``tasks_api_access`` (admin by default); creating ``import`` tasks is deprecated there in favour of
interoperable import, and here such a task is run as a web-download import of a new image."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from tinystack.core import errors, paging
from tinystack.core.auth import RequestContext
from tinystack.core.web import validate
from tinystack.image import imports
from tinystack.image.models import ImageTask

if TYPE_CHECKING:
    from tinystack.image.service import ImageService

SORT_KEYS = ("id", "type", "status", "created_at", "updated_at")
TYPES = ("import", "api_image_import")
STATUSES = ("pending", "processing", "success", "failure")
WORDING = paging.Wording(
    not_integer="{name} param must be an integer", too_small="{name} param must be positive",
    sort_key="Invalid sort key: {key}. It must be one of the following: {keys}.",
    sort_dir="Invalid sort direction: {direction}", sort_count="Number of sort dirs does not match the number of sort keys",
    mixed_syntax="Old and new sorting syntax cannot be combined", marker="Invalid marker. Task {marker} could not be found.")

CREATE: dict[str, Any] = {
    "type": "object", "required": ["type", "input"], "additionalProperties": False,
    "properties": {
        "type": {"type": "string", "enum": list(TYPES)},
        "input": {"type": "object", "required": ["import_from", "import_from_format", "image_properties"],
                  "properties": {"import_from": {"type": "string", "minLength": 1},
                                 "import_from_format": {"type": "string", "minLength": 1},
                                 "image_properties": {"type": "object"}}},
    },
}


class Tasks:
    def __init__(self, svc: ImageService) -> None:
        self.svc = svc

    def _gate(self, ctx: RequestContext, rule: str) -> None:
        self.svc.enforce(ctx, "tasks_api_access")
        self.svc.enforce(ctx, rule)

    def get(self, ctx: RequestContext, task_id: str) -> ImageTask:
        self._gate(ctx, "get_task")
        with self.svc.session() as s:
            task = s.get(ImageTask, task_id)
            if task is None or not (ctx.is_admin or task.owner == ctx.project_id):
                raise errors.NotFound(f"Task with the given id {task_id} was not found")
            return task

    def list_tasks(self, ctx: RequestContext, query: paging.Query) -> tuple[list[ImageTask], str | None]:
        """One page of the tasks the caller may see, and the marker of the next page (None on the last)."""
        self._gate(ctx, "get_tasks")
        page = paging.page(query, SORT_KEYS, self.svc.settings.limit_param_default, self.svc.settings.api_limit_max,
                           WORDING, default_key="created_at")
        stmt = select(ImageTask)
        for name, allowed in (("type", TYPES), ("status", STATUSES)):
            value = query.get(name)
            if value is not None:
                if value not in allowed:
                    raise errors.BadRequest(f"Invalid {name} value: {value}")
                stmt = stmt.where(getattr(ImageTask, name) == value)
        if not ctx.is_admin:
            stmt = stmt.where(ImageTask.owner == ctx.project_id)
        for key, direction in paging.with_tiebreaks(page.sort or [("created_at", "desc")], ("created_at", "id")):
            column = getattr(ImageTask, key)
            stmt = stmt.order_by(column.asc() if direction == "asc" else column.desc())
        with self.svc.session() as s:
            rows = list(s.scalars(stmt).all())
        limit = page.limit if page.limit is not None else len(rows)
        rows = paging.paginate(rows, limit + 1, page.marker, lambda t: t.id, WORDING)
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (rows[-1].id if more and rows else None)

    async def create(self, ctx: RequestContext, body: Any, request_id: str) -> ImageTask:
        """``POST /v2/tasks`` (type ``import``): a new image, its data fetched from ``import_from``."""
        self._gate(ctx, "add_task")
        validate(body, CREATE)
        if body["type"] != "import":
            raise errors.BadRequest(f"Task type {body['type']} cannot be created through the tasks API.")
        task_input: Mapping[str, Any] = body["input"]
        if imports.WEB_DOWNLOAD not in self.svc.settings.enabled_import_methods:
            raise errors.BadRequest("Import tasks need the web-download import method, which this site disables.")
        props = dict(task_input["image_properties"])
        for key in ("disk_format", "container_format"):
            if not props.get(key):
                raise errors.BadRequest(f"Input does not contain '{key}' field in image_properties.")
        image = await self.svc.create_async(ctx, props)
        try:
            task_id = await self.svc.imports.import_image(
                ctx, image.id, {"method": {"name": imports.WEB_DOWNLOAD, "uri": task_input["import_from"]}},
                request_id, task_type="import", task_input=dict(task_input))
        except BaseException:
            await self.svc.delete(ctx, image.id)
            raise
        return self.get(ctx, task_id)
