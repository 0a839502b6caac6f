"""Paging and sorting query parameters, parsed one way for every list API: ``limit`` (and ``offset``),
``marker``, and sort keys with directions in both syntaxes (``sort=k1:asc,k2`` and repeated
``sort_key``/``sort_dir``). A bad value is a ``BadRequest``, which the calling API renders in its own fault
format; the words are the API's (``Wording``), since clients and tests match what each OpenStack API says."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from tinystack.core import errors
from tinystack.core.jsonio import INT64_MAX

T = TypeVar("T")
DIRECTIONS = ("asc", "desc")


class Query(Protocol):
    """A query string as aiohttp (``request.query``) and multidict give it: repeated names are kept."""

    def get(self, key: str, /) -> Any: ...

    def getall(self, key: str, default: list[Any], /) -> list[Any]: ...

    def __contains__(self, key: object, /) -> bool: ...

    def __iter__(self) -> Iterator[str]: ...


@dataclass(frozen=True)
class Params:
    """A plain mapping (one value a name) as a ``Query``; ``repeated(name)`` gives every value of a name that
    repeats, where the caller has them."""

    values: Mapping[str, Any]
    repeated: Callable[[str], list[Any]] | None = None

    def get(self, key: str, /) -> Any:
        return self.values.get(key)

    def getall(self, key: str, default: list[Any], /) -> list[Any]:
        if self.repeated is not None:
            return self.repeated(key) or default
        return [self.values[key]] if key in self.values else default

    def __contains__(self, key: object, /) -> bool:
        return key in self.values

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)


@dataclass(frozen=True)
class Wording:
    """One API's messages for bad paging parameters. Placeholders: ``{name}`` (the parameter), ``{raw}`` (its
    value), ``{minimum}``, ``{maximum}``, ``{key}``, ``{direction}``, ``{keys}`` (the allowed sort keys),
    ``{marker}``."""

    not_integer: str = "Invalid value {raw!r} for query parameter {name}: not an integer."
    too_small: str = "Invalid value {raw!r} for query parameter {name}: must be >= {minimum}."
    too_large: str = "Invalid value {raw!r} for query parameter {name}: must be <= {maximum}."
    sort_key: str = "Invalid sort key {key}: it must be one of {keys}."
    sort_dir: str = "Invalid sort direction {direction}: it must be asc or desc."
    sort_count: str = "The number of sort keys and sort directions must be the same."
    mixed_syntax: str = "The sort parameter and sort_key/sort_dir cannot be combined."
    marker: str = "marker [{marker}] not found"


DEFAULT = Wording()


def _bad(template: str, **values: Any) -> errors.BadRequest:
    return errors.BadRequest(template.format(**values))


def integer(raw: str | None, name: str, default: int | None = None, minimum: int = 0,
            wording: Wording = DEFAULT, bound: int | None = INT64_MAX) -> int | None:
    """``raw`` as an integer from ``minimum`` to ``bound`` (int64's maximum: what a database column holds);
    ``default`` when absent or empty."""
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _bad(wording.not_integer, name=name, raw=raw) from None
    if value < minimum:
        raise _bad(wording.too_small, name=name, raw=raw, minimum=minimum)
    if bound is not None and value > bound:
        raise _bad(wording.too_large, name=name, raw=raw, maximum=bound)
    return value


def limit(query: Query, default: int | None = None, maximum: int | None = None, minimum: int = 0,
          name: str = "limit", wording: Wording = DEFAULT) -> int | None:
    """The page size asked for (or ``default``), capped at ``maximum``: asking for more is not an error."""
    value = integer(query.get(name), name, default, minimum, wording, INT64_MAX if maximum is None else None)
    if maximum is not None and value is not None:
        return min(value, maximum)
    return value


def sort(query: Query, keys: Collection[str] | None, default_dir: str = "desc", default_key: str | None = None,
         strict_pairs: bool = False, fold_case: bool = False, wording: Wording = DEFAULT) -> list[tuple[str, str]]:
    """The (key, direction) pairs asked for, [] for none.

    ``sort=k1:asc,k2`` gives each key its direction (``default_dir`` when left out). Repeated
    ``sort_key``/``sort_dir`` pair up in order; one direction (or none) applies to every key unless
    ``strict_pairs``, and a direction without a key sorts ``default_key``. Both syntaxes at once, a key
    outside ``keys`` (None: any) or a direction other than asc/desc is a 400."""
    pairs: list[tuple[str, str]] = []
    if "sort" in query:
        if "sort_key" in query or "sort_dir" in query:
            raise _bad(wording.mixed_syntax)
        for part in str(query.get("sort")).strip().split(","):
            key, _, direction = part.partition(":")
            pairs.append((key.strip(), direction.strip() or default_dir))
    else:
        names = [k.strip() for k in query.getall("sort_key", [])]
        dirs = [d.strip() for d in query.getall("sort_dir", [])]
        if dirs and len(dirs) != len(names) and (strict_pairs or len(dirs) > 1):
            raise _bad(wording.sort_count)
        if not names and dirs and default_key is not None:
            names = [default_key]
        if len(dirs) <= 1:
            dirs = [dirs[0] if dirs else default_dir] * len(names)
        pairs = list(zip(names, dirs, strict=True))
    if fold_case:
        pairs = [(k, d.lower()) for k, d in pairs]
    for key, direction in pairs:
        if keys is not None and key not in keys:
            raise _bad(wording.sort_key, key=key, keys=", ".join(keys))
        if direction not in DIRECTIONS:
            raise _bad(wording.sort_dir, direction=direction)
    return pairs


def with_tiebreaks(pairs: Sequence[tuple[str, str]], tiebreaks: Sequence[str], direction: str | None = None
                   ) -> list[tuple[str, str]]:
    """``pairs`` with the ``tiebreaks`` not already sorted on appended, so the order (and keyset paging over
    it) is total; in ``direction``, or the first pair's."""
    out = list(pairs)
    way = direction or (out[0][1] if out else "desc")
    out += [(key, way) for key in tiebreaks if key not in {k for k, _ in pairs}]
    return out


@dataclass(frozen=True)
class Page:
    """A list request's paging: the size, where the previous page ended, and the order."""

    limit: int | None
    marker: str | None = None
    sort: list[tuple[str, str]] = field(default_factory=list)


def page(query: Query, keys: Collection[str] | None = None, default_limit: int | None = None,
         max_limit: int | None = None, wording: Wording = DEFAULT, **sort_options: Any) -> Page:
    """``limit``, ``marker`` and the sort of one list request (``sort_options`` as ``sort`` takes them)."""
    return Page(limit(query, default_limit, max_limit, wording=wording), query.get("marker") or None,
                sort(query, keys, wording=wording, **sort_options))


def paginate(items: list[T], limit: int | None, marker: str | None, key: Callable[[T], str],
             wording: Wording = DEFAULT) -> list[T]:
    """``limit``/``marker`` over an already ordered list; an unknown marker is a 400, as Nova and Glance do."""
    if marker is not None:
        for i, item in enumerate(items):
            if key(item) == marker:
                items = items[i + 1 :]
                break
        else:
            raise _bad(wording.marker, marker=marker)
    return items if limit is None else items[:limit]
