"""Parsing Glance's list query: limits, sorting syntaxes, filters and their errors."""

from __future__ import annotations

from typing import Any

import pytest
from multidict import MultiDict

from tinystack.core import errors
from tinystack.image import listing


def parse(*pairs: tuple[str, str], default: int = 25, maximum: int = 1000) -> listing.ListQuery:
    params: MultiDict[str] = MultiDict(pairs)
    return listing.parse(params, lambda name: params.getall(name, []), default, maximum)


def test_defaults() -> None:
    q = parse()
    assert q.limit == 25 and q.marker is None and q.member_status == "accepted" and q.visibility is None
    assert q.sort == [("created_at", "desc"), ("id", "desc")]


def test_limit_is_capped() -> None:
    assert parse(("limit", "5000"), maximum=1000).limit == 1000


def test_sorting_syntaxes() -> None:
    assert parse(("sort", "name:asc,size")).sort == [("name", "asc"), ("size", "desc"), ("created_at", "asc"),
                                                     ("id", "asc")]
    assert parse(("sort_key", "name"), ("sort_key", "size"), ("sort_dir", "asc")).sort[:2] == [
        ("name", "asc"), ("size", "asc")]
    assert parse(("sort_key", "name"), ("sort_key", "size"), ("sort_dir", "asc"), ("sort_dir", "desc")).sort[:2] == [
        ("name", "asc"), ("size", "desc")]


@pytest.mark.parametrize("pairs", [
    (("limit", "-1"),), (("limit", "ten"),), (("sort", "name"), ("sort_key", "size")), (("sort_key", "owner"),),
    (("sort_dir", "up"),), (("sort_key", "name"), ("sort_key", "size"), ("sort_dir", "asc"), ("sort_dir", "asc"),
                            ("sort_dir", "asc")),
    (("member_status", "maybe"),), (("visibility", "everyone"),), (("os_hidden", "yes"),), (("protected", "1"),),
    (("size_min", "big"),), (("created_at", "gt:yesterday"),), (("name", "like:foo"),), (("changes-since", "x"),),
    (("name", 'in:"unclosed'),),
])
def test_bad_queries_are_400(pairs: Any) -> None:
    with pytest.raises(errors.BadRequest):
        parse(*pairs)


def test_filters_compile() -> None:
    q = parse(("name", "in:a,\"b,c\""), ("created_at", "gte:2020-01-01T00:00:00Z"), ("size_max", "10"),
              ("hw_disk_bus", "virtio"), ("tag", "x"), ("tag", "y"), ("visibility", "all"))
    assert q.tags == ["x", "y"] and q.visibility == "all"
    compiled = [str(c.compile(compile_kwargs={"literal_binds": True})) for c in q.conditions]
    assert any("IN ('a', 'b,c')" in c for c in compiled)
    assert any("image_property" in c for c in compiled)
