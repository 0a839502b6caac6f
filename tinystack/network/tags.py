"""Tags on every standard resource (``/v2.0/<resources>/{id}/tags``), as the tag/tag-ext extensions define."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.core.auth import RequestContext
from tinystack.network.common import bad, touch
from tinystack.network.models import Tag

if TYPE_CHECKING:
    # Annotations only: at run time the service hands itself in, and the concepts stay below service.py.
    from tinystack.network.service import Changes, NetworkService

MAX_TAGS = 50


def _check(tag: Any) -> str:
    if not isinstance(tag, str) or not tag or len(tag) > 255 or "," in tag or "/" in tag:
        raise bad(f"Invalid input for operation: '{tag}' is not a valid tag.", "InvalidInput")
    return tag


def _rule(plural: str, action: str) -> str:
    """Neutron's tag rule for a collection: ``get_networks_tags``, ``update_security_groups_tags`` ..."""
    return f"{action}_{plural.replace('-', '_')}_tags"


def _found(svc: NetworkService, s: Session, ctx: RequestContext, plural: str, ident: str, action: str) -> Any:
    """The visible row, once the caller may ``action`` its tags (the row's owner, or an admin, by default)."""
    row = svc.find(s, ctx, plural, ident)
    svc.enforce(ctx, _rule(plural, action), {"project_id": getattr(row, "project_id", None)})
    return row


def list_tags(svc: NetworkService, ctx: RequestContext, plural: str, ident: str) -> list[str]:
    with svc.session() as s:
        _found(svc, s, ctx, plural, ident, "get")
        return sorted(s.scalars(select(Tag.tag).where(Tag.resource_id == ident)))


def has_tag(svc: NetworkService, ctx: RequestContext, plural: str, ident: str, tag: str) -> None:
    with svc.session() as s:
        _found(svc, s, ctx, plural, ident, "get")
        if s.get(Tag, (ident, tag)) is None:
            raise errors.NotFound(f"Tag {tag} could not be found for {plural[:-1]} {ident}.", type="TagNotFound")


def replace(svc: NetworkService, ctx: RequestContext, plural: str, ident: str, body: Any) -> list[str]:
    if not isinstance(body, dict) or not isinstance(body.get("tags"), list):
        raise bad("Invalid input for operation: a 'tags' list is required.", "InvalidInput")
    tags = sorted({_check(t) for t in body["tags"]})
    if len(tags) > MAX_TAGS:
        raise bad(f"Invalid input for operation: at most {MAX_TAGS} tags are allowed.", "InvalidInput")

    def do(s: Session, changes: Changes) -> None:
        row = _found(svc, s, ctx, plural, ident, "update")
        s.execute(delete(Tag).where(Tag.resource_id == ident))
        s.add_all([Tag(resource_id=ident, tag=t) for t in tags])
        touch(row)

    svc.transact(do)
    return tags


def add(svc: NetworkService, ctx: RequestContext, plural: str, ident: str, tag: str) -> None:
    _check(tag)

    def do(s: Session, changes: Changes) -> None:
        row = _found(svc, s, ctx, plural, ident, "create")
        if s.get(Tag, (ident, tag)) is None:
            s.add(Tag(resource_id=ident, tag=tag))
            touch(row)

    svc.transact(do)


def remove(svc: NetworkService, ctx: RequestContext, plural: str, ident: str, tag: str | None) -> None:
    def do(s: Session, changes: Changes) -> None:
        row = _found(svc, s, ctx, plural, ident, "delete")
        if tag is not None and s.get(Tag, (ident, tag)) is None:
            raise errors.NotFound(f"Tag {tag} could not be found for {plural[:-1]} {ident}.", type="TagNotFound")
        q = delete(Tag).where(Tag.resource_id == ident)
        s.execute(q.where(Tag.tag == tag) if tag is not None else q)
        touch(row)

    svc.transact(do)

