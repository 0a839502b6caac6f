"""Helpers every networking rule module shares: Neutron-typed errors, timestamps, standard attributes."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, inspect, or_, select, update
from sqlalchemy.orm import Session, attributes

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.network.models import StandardAttrs, Tag, utcnow


def new_uuid() -> str:
    """Neutron ids are dashed UUIDs."""
    return str(uuid.uuid4())


def not_found(kind: str, ident: str) -> errors.NotFound:
    """Neutron's ``<Kind>NotFound`` with its message, e.g. NetworkNotFound."""
    words = kind.replace("_", " ")
    label = "".join(w.capitalize() for w in kind.split("_"))
    label = {"Floatingip": "FloatingIP", "Subnetpool": "SubnetPool"}.get(label, label)
    return errors.NotFound(f"{words.capitalize()} {ident} could not be found.", type=f"{label}NotFound")


def visible_query(model: Any, ctx: RequestContext, ident: str | None, *opened: ColumnElement[bool]) -> Select[Any]:
    """The rows of ``model`` the caller sees (only ``ident``'s when given): all of them for an admin, otherwise its
    project's and those that ``opened`` (``shared``, ``router:external`` ...) gives every project."""
    q = select(model)
    if ident is not None:
        q = q.where(model.id == ident)
    if not ctx.is_admin:
        q = q.where(or_(model.project_id == ctx.project_id, *opened))
    return q


def bad(message: str, kind: str = "HTTPBadRequest") -> errors.BadRequest:
    return errors.BadRequest(message, type=kind)


def conflict(message: str, kind: str) -> errors.Conflict:
    return errors.Conflict(message, type=kind)


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def touch(row: StandardAttrs) -> None:
    """A resource changed: bump its revision number and updated_at, as Neutron does on every update.

    The increment is done by the database (``revision_number + 1``), not on the copy this transaction read:
    two API processes updating one resource at once must give it two revisions, not one (the second writer
    waits for the first's row lock and adds to its number)."""
    row.updated_at = utcnow()
    state = inspect(row)
    s = state.session
    if s is None or state.identity is None:  # not in the database yet: nobody else can be writing it
        row.revision_number = (row.revision_number or 0) + 1
        return
    model = type(row)
    where = [c == v for c, v in zip(inspect(model).primary_key, state.identity, strict=True)]
    s.execute(update(model).where(*where).values(revision_number=model.revision_number + 1)
              .execution_options(synchronize_session=False))
    attributes.set_committed_value(
        row, "revision_number", s.execute(select(model.revision_number).where(*where)).scalar_one())


def standard(row: Any, tags: dict[str, list[str]]) -> dict[str, Any]:
    return {"description": row.description or "", "created_at": iso(row.created_at),
            "updated_at": iso(row.updated_at), "revision_number": row.revision_number or 0,
            "tags": sorted(tags.get(row.id, []))}


def tags_for(s: Session, ids: Iterable[str]) -> dict[str, list[str]]:
    ids = list(ids)
    out: dict[str, list[str]] = {}
    # Chunked so that large lists stay under SQLite's bound-parameter limit.
    for i in range(0, len(ids), 500):
        for rid, tag in s.execute(select(Tag.resource_id, Tag.tag).where(Tag.resource_id.in_(ids[i:i + 500]))):
            out.setdefault(rid, []).append(tag)
    return out


def drop_tags(s: Session, resource_id: str) -> None:
    s.execute(delete(Tag).where(Tag.resource_id == resource_id))


def unknown_attrs(body: dict[str, Any], allowed: Iterable[str]) -> None:
    extra = sorted(set(body) - set(allowed))
    if extra:
        raise bad(f"Unrecognized attribute(s) '{', '.join(extra)}'")


def resource_body(body: Any, singular: str) -> dict[str, Any]:
    """``{"<singular>": {...}}`` → the inner object; anything else is a 400."""
    if not isinstance(body, dict) or not isinstance(body.get(singular), dict):
        raise bad(f"Resource body required; expected an object named '{singular}'.")
    return dict(body[singular])


def check_bool(attrs: dict[str, Any], *names: str) -> None:
    for name in names:
        if name in attrs and not isinstance(attrs[name], bool):
            value = attrs[name]
            if isinstance(value, str) and value.lower() in ("true", "false"):
                attrs[name] = value.lower() == "true"
            else:
                raise bad(f"Invalid input for {name}. Reason: '{value}' is not a valid boolean value.")


def check_str(attrs: dict[str, Any], *names: str, maxlen: int = 255) -> None:
    for name in names:
        if name in attrs:
            value = attrs[name]
            if value is None and name in ("description", "name"):
                attrs[name] = ""
                continue
            if not isinstance(value, str):
                raise bad(f"Invalid input for {name}. Reason: '{value}' is not a valid string.")
            if len(value) > maxlen:
                raise bad(f"Invalid input for {name}. Reason: '{value[:20]}...' exceeds maximum length of {maxlen}.")
