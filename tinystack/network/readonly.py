"""The write half of the resource protocol for collections clients may only read (service providers,
segments): every write is Neutron's 405, so a routing slip can never change anything."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.core.auth import RequestContext

if TYPE_CHECKING:
    from tinystack.network.service import Changes, NetworkService


class ReadOnly:
    plural: str
    quota: str | None = None

    def _refuse(self) -> errors.MethodNotAllowed:
        return errors.MethodNotAllowed(f"{self.plural} are read-only.", type="HTTPMethodNotAllowed")

    def create(self, svc: NetworkService, s: Session, ctx: RequestContext, attrs: dict[str, Any],
               changes: Changes) -> str:
        raise self._refuse()

    def update(self, svc: NetworkService, s: Session, ctx: RequestContext, row: Any, attrs: dict[str, Any],
               changes: Changes) -> None:
        raise self._refuse()

    def delete(self, svc: NetworkService, s: Session, ctx: RequestContext, row: Any, changes: Changes) -> None:
        raise self._refuse()
