"""GET /allocation_candidates: the ways a request can be satisfied now, and the providers involved."""

from __future__ import annotations

import re

from aiohttp import web

from tinystack.core import errors, paging
from tinystack.core.web import Route, ctx, version
from tinystack.placement import candidates, views
from tinystack.placement.api import query
from tinystack.placement.api.common import at_least, check_query, require, respond
from tinystack.placement.commands import CandidateQuery
from tinystack.placement.service import PlacementService

_GROUPED = re.compile(r"^(resources|required|member_of)(\d*)$")


def _groups(request: web.Request) -> list[candidates.Request]:
    """The request groups in the query: the unsuffixed one, plus numbered ones from 1.25."""
    allowed = {"resources", "limit"}
    if at_least(request, 1, 17):
        allowed.add("required")
    if at_least(request, 1, 21):
        allowed.add("member_of")
    if at_least(request, 1, 25):
        allowed.add("group_policy")
        allowed |= {k for k in request.query if (m := _GROUPED.match(k)) and m.group(2)}
    check_query(request, allowed)
    raw: dict[str, dict[str, list[str]]] = {}
    for key in request.query:
        m = _GROUPED.match(key)
        if m:
            raw.setdefault(m.group(2), {})[m.group(1)] = request.query.getall(key)
    if not raw or not any("resources" in g for g in raw.values()):
        raise errors.BadRequest("Invalid query string parameters: 'resources' is a required property",
                                code="placement.undefined_code")
    out = []
    for suffix, params in sorted(raw.items()):
        if "resources" not in params:
            raise errors.BadRequest(f"All traits parameters must be associated with resources. Found: "
                                    f"required{suffix} without resources{suffix}.")
        if len(params["resources"]) > 1 or len(params.get("required", [])) > 1:
            raise errors.BadRequest(f"Parameters resources{suffix} and required{suffix} may be given only once.")
        required, forbidden = query.traits(request, params["required"][0]) if "required" in params else ([], [])
        out.append(candidates.Request(query.resources(params["resources"][0]), required, forbidden,
                                      query.member_of(request, params.get("member_of", [])), suffix=suffix))
    return out


def _query(request: web.Request) -> CandidateQuery:
    groups = _groups(request)
    limit = paging.limit(request.query, minimum=1) if at_least(request, 1, 16) else None
    policy = request.query.get("group_policy")
    if policy is not None and policy not in ("none", "isolate"):
        raise errors.BadRequest(f"Invalid query string parameters: {policy!r} is not one of ['none', 'isolate']")
    if sum(1 for g in groups if g.suffix) > 1 and policy is None:
        raise errors.BadRequest("The \"group_policy\" parameter is required when specifying more than one "
                                "\"resources{N}\" parameter.")
    return CandidateQuery(groups, policy == "isolate", limit, all_resources=at_least(request, 1, 27),
                          with_traits=at_least(request, 1, 17))


class CandidatesAPI:
    def __init__(self, svc: PlacementService) -> None:
        self.svc = svc

    def routes(self) -> list[Route]:
        return [Route("GET", "/allocation_candidates", self.index)]

    async def index(self, request: web.Request) -> web.Response:
        require(request, 1, 10)
        found = self.svc.allocation_candidates(ctx(request), _query(request))
        return respond(request, views.candidates(found, version(request)))
