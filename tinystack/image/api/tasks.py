"""``/v2/tasks``: list, show and (deprecated) create import tasks."""

from __future__ import annotations

from aiohttp import web

from tinystack.core.web import REQUEST_ID, Route, ctx, json_response, read_json
from tinystack.image import views
from tinystack.image.service import ImageService


class TasksAPI:
    def __init__(self, svc: ImageService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/v2/tasks", self.index),
            Route("POST", "/v2/tasks", self.create),
            Route("GET", "/v2/tasks/{task_id}", self.show),
        ]

    async def index(self, request: web.Request) -> web.Response:
        tasks, next_marker = self.svc.task_api.list_tasks(ctx(request), request.query)
        return json_response(views.tasks([views.task(t, summary=True) for t in tasks], list(request.query.items()),
                                          next_marker))

    async def show(self, request: web.Request) -> web.Response:
        return json_response(views.task(self.svc.task_api.get(ctx(request), request.match_info["task_id"])))

    async def create(self, request: web.Request) -> web.Response:
        task = await self.svc.task_api.create(ctx(request), await read_json(request), request[REQUEST_ID])
        return json_response(views.task(task), status=201, headers={"Location": f"/v2/tasks/{task.id}"})
