"""The names providers are described with: traits and resource classes, standard and custom."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tinystack.core import errors
from tinystack.placement import standard
from tinystack.placement.models import Inventory, ProviderTrait, ResourceClass, Trait


def list_traits(s: Session, name_filter: str | None = None, associated: bool | None = None) -> list[str]:
    """``name_filter`` is ``in:A,B`` or ``startswith:PREFIX``, as placement accepts."""
    names = set(standard.TRAITS) | set(s.scalars(select(Trait.name)))
    if name_filter:
        kind, _, arg = name_filter.partition(":")
        if kind == "in":
            names &= {n.strip() for n in arg.split(",") if n.strip()}
        elif kind == "startswith":
            names = {n for n in names if n.startswith(arg)}
        else:
            raise errors.BadRequest(f"Badly formatted name parameter. Expected name query string parameter in form: "
                                    f"?name=[in|startswith]:[name1,name2|prefix]. Got: \"{name_filter}\"")
    if associated is not None:
        used = set(s.scalars(select(ProviderTrait.trait).distinct()))
        names = names & used if associated else names - used
    return sorted(names)


def trait_exists(s: Session, name: str) -> bool:
    return name in standard.TRAITS or s.get(Trait, name) is not None


def put_trait(s: Session, name: str) -> bool:
    """Create a custom trait; False when it already existed."""
    if not standard.is_custom(name):
        raise errors.BadRequest(f"The trait is invalid. A valid trait must be no longer than 255 characters, start "
                                f"with the prefix \"CUSTOM_\" and use following characters: \"A\"-\"Z\", \"0\"-\"9\" "
                                f"and \"_\" (got {name!r}).")
    if s.get(Trait, name) is not None:
        return False
    s.add(Trait(name=name))
    return True


def delete_trait(s: Session, name: str) -> None:
    if name in standard.TRAITS:
        raise errors.BadRequest(f"Cannot delete standard trait {name}.")
    trait = s.get(Trait, name)
    if trait is None:
        raise errors.NotFound(f"No such trait(s): {name}.")
    if s.scalar(select(func.count()).select_from(ProviderTrait).where(ProviderTrait.trait == name)):
        raise errors.Conflict(f"The trait {name} is in use by a resource provider.", code="placement.trait.inuse")
    s.delete(trait)


def list_resource_classes(s: Session) -> list[str]:
    return [*standard.RESOURCE_CLASSES, *sorted(s.scalars(select(ResourceClass.name)))]


def resource_class_exists(s: Session, name: str) -> bool:
    return name in standard.RESOURCE_CLASSES or s.get(ResourceClass, name) is not None


def _check_custom_rc(name: str) -> None:
    if not standard.is_custom(name):
        raise errors.BadRequest(f"Invalid resource class name {name!r}: custom resource classes must start with "
                                "CUSTOM_ and use only A-Z, 0-9 and _.")


def create_resource_class(s: Session, name: str, exist_ok: bool = False) -> bool:
    """Create a custom class; False (or 409 unless ``exist_ok``) when it already exists."""
    if name in standard.RESOURCE_CLASSES:
        if exist_ok:
            raise errors.BadRequest(f"Cannot update standard resource class {name}")
        raise errors.Conflict(f"Conflicting resource class already exists: {name}", code="placement.duplicate_name")
    _check_custom_rc(name)
    if s.get(ResourceClass, name) is not None:
        if exist_ok:
            return False
        raise errors.Conflict(f"Conflicting resource class already exists: {name}", code="placement.duplicate_name")
    s.add(ResourceClass(name=name))
    return True


def _in_use(s: Session, name: str) -> bool:
    return bool(s.scalar(select(func.count()).select_from(Inventory).where(Inventory.resource_class == name)))


def rename_resource_class(s: Session, old: str, new: str) -> None:
    """Microversions before 1.7 update a custom class by renaming it."""
    if old in standard.RESOURCE_CLASSES:
        raise errors.BadRequest(f"Cannot update standard resource class {old}")
    row = s.get(ResourceClass, old)
    if row is None:
        raise errors.NotFound(f"No such resource class {old}.")
    _check_custom_rc(new)
    if resource_class_exists(s, new):
        raise errors.Conflict(f"Resource class already exists: {new}", code="placement.duplicate_name")
    if _in_use(s, old):
        raise errors.Conflict(f"Unable to rename resource class {old}: it is in use by an inventory.")
    s.delete(row)
    s.add(ResourceClass(name=new))


def delete_resource_class(s: Session, name: str) -> None:
    if name in standard.RESOURCE_CLASSES:
        raise errors.BadRequest(f"Cannot delete standard resource class {name}: Cannot delete standard resource class.")
    row = s.get(ResourceClass, name)
    if row is None:
        raise errors.NotFound(f"No such resource class {name}.")
    if _in_use(s, name):
        raise errors.Conflict(f"Unable to delete resource class {name}. Class is in use in inventory.")
    s.delete(row)
