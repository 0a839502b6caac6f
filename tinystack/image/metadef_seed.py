"""Loads the metadata definitions tinystack ships (``definitions/*.json``) into the catalog at start. Each
file loads once, recorded in ``image_metadef_seed``: a namespace an operator deleted stays deleted, and a file
added by an upgrade loads on the next start. The files use the create body of ``POST
/v2/metadefs/namespaces``, with ``resource_types`` for its ``resource_type_associations``."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.core.web import validate
from tinystack.image import metadef_schemas
from tinystack.image.models import MetadefNamespace, MetadefSeed, utcnow

if TYPE_CHECKING:
    from tinystack.image.service import ImageService

DEFINITIONS = Path(__file__).parent / "definitions"
log = logging.getLogger(__name__)


def read(path: Path) -> dict[str, Any]:
    """A definition file as a checked namespace create body."""
    doc = json.loads(path.read_text())
    doc["resource_type_associations"] = doc.pop("resource_types", [])
    validate(doc, metadef_schemas.NAMESPACE)
    return doc  # type: ignore[no-any-return]


def load(svc: ImageService, directory: Path = DEFINITIONS) -> list[str]:
    """Load every file not loaded before; the namespaces it added."""
    added = []
    for path in sorted(directory.glob("*.json")):
        doc = read(path)

        def step(s: Session, name: str = path.name, doc: dict[str, Any] = doc) -> bool:
            if s.get(MetadefSeed, name) is not None:
                return False
            s.add(MetadefSeed(name=name, loaded_at=utcnow()))
            taken = s.scalars(select(MetadefNamespace.id).where(MetadefNamespace.namespace == doc["namespace"]))
            if taken.first() is not None:
                return False  # an operator made one of that name first: theirs wins
            svc.metadefs.insert_namespace(s, doc, owner=None, protect_types=True)
            return True

        try:
            if svc.retrying(step):
                added.append(doc["namespace"])
        except (IntegrityError, errors.Conflict):
            continue  # another process loaded it at the same moment
    if added:
        log.info("metadata definitions loaded: %s", ", ".join(added))
    return added
