"""Address scopes: a named IPv4 or IPv6 address space that subnet pools belong to (``address_scope_id``).
A pool's scope must have the pool's IP version, and a scope in use by a pool cannot be deleted."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tinystack.core.auth import RequestContext
from tinystack.network.common import (
    bad,
    check_bool,
    check_str,
    conflict,
    drop_tags,
    new_uuid,
    not_found,
    standard,
    tags_for,
    touch,
    unknown_attrs,
    visible_query,
)
from tinystack.network.models import AddressScope, SubnetPool

if TYPE_CHECKING:
    from tinystack.network.service import Changes, NetworkService

ATTRS = ("name", "description", "ip_version", "shared", "project_id", "tenant_id")
UPDATABLE = ("name", "description", "shared")


def check_pool_scope(svc: NetworkService, s: Session, ctx: RequestContext, scope_id: Any, version: int,
                     pool_id: str | None = None) -> str | None:
    """The address scope a subnet pool may name: one the caller sees, of the pool's IP version."""
    if scope_id is None:
        return None
    if not isinstance(scope_id, str):
        raise bad(f"Invalid input for address_scope_id. Reason: '{scope_id}' is not a valid UUID.")
    rows = AddressScopes().visible(svc, s, ctx, scope_id)
    if not rows:
        raise not_found("address_scope", scope_id)
    if rows[0].ip_version != version:
        raise bad(f"Illegal subnetpool association: subnetpool {pool_id or '(new)'} cannot be associated with "
                  f"address scope {scope_id} because subnetpool ip_version is not {rows[0].ip_version}.",
                  "IllegalSubnetPoolIpVersionAssociationToAddressScope")
    return scope_id


class AddressScopes:
    singular = "address_scope"
    plural = "address_scopes"
    quota: str | None = None

    def visible(self, svc: NetworkService, s: Session, ctx: RequestContext, ident: str | None = None) -> list[Any]:
        return list(s.scalars(visible_query(AddressScope, ctx, ident, AddressScope.shared.is_(True))))

    def render(self, svc: NetworkService, s: Session, ctx: RequestContext, rows: list[Any]) -> list[dict[str, Any]]:
        tags = tags_for(s, [r.id for r in rows])
        return [{"id": r.id, "name": r.name, "project_id": r.project_id, "tenant_id": r.project_id,
                 "ip_version": r.ip_version, "shared": r.shared, **standard(r, tags)} for r in rows]

    def create(self, svc: NetworkService, s: Session, ctx: RequestContext, attrs: dict[str, Any],
               changes: Changes) -> str:
        unknown_attrs(attrs, ATTRS)
        check_str(attrs, "name", "description")
        check_bool(attrs, "shared")
        project = svc.owner(ctx, attrs)
        target = {"project_id": project}
        svc.enforce(ctx, "create_address_scope", target)
        svc.enforce_attrs(ctx, "create_address_scope", attrs, target, ("shared",))
        version = attrs.get("ip_version")
        if isinstance(version, str) and version.isdigit():
            version = int(version)
        if version not in (4, 6) or isinstance(version, bool):
            raise bad(f"Invalid input for ip_version. Reason: {version} is not in [4, 6].")
        scope = AddressScope(id=new_uuid(), project_id=project, name=attrs.get("name", ""),
                             description=attrs.get("description", ""), ip_version=version,
                             shared=attrs.get("shared", False))
        s.add(scope)
        s.flush()
        return scope.id

    def update(self, svc: NetworkService, s: Session, ctx: RequestContext, row: AddressScope, attrs: dict[str, Any],
               changes: Changes) -> None:
        unknown_attrs(attrs, UPDATABLE)
        check_str(attrs, "name", "description")
        check_bool(attrs, "shared")
        target = {"project_id": row.project_id}
        svc.enforce(ctx, "update_address_scope", target)
        svc.enforce_attrs(ctx, "update_address_scope", attrs, target, ("shared",))
        if attrs.get("shared") is False and row.shared:
            raise bad(f"Unable to unshare address scope {row.id}: sharing cannot be taken back.", "BadRequest")
        for key in UPDATABLE:
            if key in attrs:
                setattr(row, key, attrs[key])
        touch(row)

    def delete(self, svc: NetworkService, s: Session, ctx: RequestContext, row: AddressScope,
               changes: Changes) -> None:
        svc.enforce(ctx, "delete_address_scope", {"project_id": row.project_id})
        if s.scalar(select(SubnetPool.id).where(SubnetPool.address_scope_id == row.id).limit(1)):
            raise conflict(f"Unable to complete operation on address scope {row.id}. There are one or more "
                           "subnet pools in use on the address scope.", "AddressScopeInUse")
        drop_tags(s, row.id)
        s.delete(row)
