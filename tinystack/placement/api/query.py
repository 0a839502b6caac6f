"""Query string syntax shared by provider listing and allocation candidates: resources, required, member_of."""

from __future__ import annotations

import re
import uuid as uuidlib

from aiohttp import web

from tinystack.core import errors
from tinystack.placement.api.common import at_least

_RESOURCE = re.compile(r"^([A-Z0-9_]+):(\d+)$")


def resources(raw: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in raw.split(","):
        m = _RESOURCE.match(part.strip())
        if not m:
            raise errors.BadRequest(f"Badly formed resources parameter. Expected resources query string parameter "
                                    f"in form: ?resources=VCPU:2,MEMORY_MB:1024. Got: {raw}.",
                                    code="placement.undefined_code")
        if m.group(1) in out:
            raise errors.BadRequest(f"Invalid resources parameter: {m.group(1)} appears more than once.",
                                    code="placement.query.duplicate_key")
        amount = int(m.group(2))
        if amount < 1:
            raise errors.BadRequest(f"Requested resource {m.group(1)} must be a positive integer. Got: {amount}.",
                                    code="placement.query.bad_value")
        out[m.group(1)] = amount
    return out


def traits(request: web.Request, raw: str) -> tuple[list[str], list[str]]:
    """``required=A,!B``: the traits required and (from 1.22) forbidden."""
    required, forbidden = [], []
    for name in (p.strip() for p in raw.split(",")):
        if not name:
            raise errors.BadRequest(f"Invalid query string parameters: Expected 'required' parameter value of the "
                                    f"form: HW_CPU_X86_VMX,CUSTOM_MAGIC. Got: {raw}")
        if name.startswith("!") and at_least(request, 1, 22):
            forbidden.append(name[1:])
        else:
            required.append(name)
    if set(required) & set(forbidden):
        raise errors.BadRequest(f"Conflicting required and forbidden traits found: {raw}")
    return required, forbidden


def member_of(request: web.Request, values: list[str]) -> list[tuple[bool, list[str]]]:
    """Each ``member_of`` value is a uuid or ``in:a,b``; repeating the parameter (1.24+) ANDs the groups."""
    if len(values) > 1 and not at_least(request, 1, 24):
        raise errors.BadRequest("Multiple member_of parameters are not supported before microversion 1.24.")
    out = []
    for raw in values:
        text = raw[3:] if raw.startswith("in:") else raw
        aggs = [p.strip() for p in text.split(",")]
        if not raw.startswith("in:") and len(aggs) > 1:
            raise errors.BadRequest(f"Invalid member_of value {raw!r}: use in:uuid1,uuid2 for more than one aggregate.")
        for agg in aggs:
            try:
                uuidlib.UUID(agg)
            except ValueError:
                raise errors.BadRequest(f"Invalid query string parameters: Expected 'member_of' parameter to contain "
                                        f"valid UUID(s). Got: {raw}") from None
        out.append((False, aggs))
    return out
