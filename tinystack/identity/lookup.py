"""Row lookup shared by the identity concepts; below service.py so the concepts need not import it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from tinystack.core import errors


def get_or_404(s: Session, model: type, ident: str, kind: str) -> Any:
    obj = s.get(model, ident)
    if obj is None:
        raise errors.NotFound(f"Could not find {kind}: {ident}.")
    return obj
