"""Paging and sorting parameters: limits, markers, both sort syntaxes, and each API's own words for a 400."""

from __future__ import annotations

import pytest
from multidict import MultiDict

from tinystack.core import errors, paging

pytestmark = pytest.mark.unit


def q(*pairs: tuple[str, str]) -> MultiDict[str]:
    return MultiDict(pairs)


def test_limit_default_cap_and_bounds() -> None:
    assert paging.limit(q()) is None
    assert paging.limit(q(), default=25) == 25
    assert paging.limit(q(("limit", "")), default=25) == 25
    assert paging.limit(q(("limit", "5000")), default=25, maximum=1000) == 1000
    # With a cap, a huge limit is capped, not refused; without one it must fit a database integer.
    assert paging.limit(q(("limit", str(2**70))), maximum=1000) == 1000
    with pytest.raises(errors.BadRequest, match="must be <="):
        paging.limit(q(("limit", str(2**63))))
    assert paging.limit(q(("limit", str(2**63 - 1)))) == 2**63 - 1
    with pytest.raises(errors.BadRequest, match="must be >= 1"):
        paging.limit(q(("limit", "0")), minimum=1)
    with pytest.raises(errors.BadRequest, match="not an integer"):
        paging.limit(q(("limit", "ten")))


def test_sort_syntaxes() -> None:
    keys = ("name", "size", "created_at", "id")
    assert paging.sort(q(), keys) == []
    assert paging.sort(q(("sort", "name:asc,size")), keys) == [("name", "asc"), ("size", "desc")]
    assert paging.sort(q(("sort_key", "name"), ("sort_key", "size"), ("sort_dir", "asc")), keys) == [
        ("name", "asc"), ("size", "asc")]
    assert paging.sort(q(("sort_key", "name"), ("sort_key", "size"), ("sort_dir", "asc"), ("sort_dir", "desc")),
                       keys) == [("name", "asc"), ("size", "desc")]
    assert paging.sort(q(("sort_dir", "asc")), keys, default_key="created_at") == [("created_at", "asc")]
    assert paging.sort(q(("sort_key", "name"), ("sort_dir", "ASC")), keys, fold_case=True) == [("name", "asc")]
    assert paging.sort(q(("sort_key", "anything")), None) == [("anything", "desc")]


@pytest.mark.parametrize(("pairs", "options", "message"), [
    ((("sort", "name"), ("sort_key", "size")), {}, "cannot be combined"),
    ((("sort_key", "owner"),), {}, "Invalid sort key owner"),
    ((("sort", "name:up"),), {}, "Invalid sort direction up"),
    ((("sort_key", "name"), ("sort_key", "size"), ("sort_dir", "asc"), ("sort_dir", "asc"), ("sort_dir", "asc")), {},
     "must be the same"),
    ((("sort_key", "name"), ("sort_key", "size"), ("sort_dir", "asc")), {"strict_pairs": True}, "must be the same"),
    ((("sort_key", "name"), ("sort_dir", "ASC")), {}, "Invalid sort direction ASC"),
])
def test_bad_sorts_are_400(pairs: tuple[tuple[str, str], ...], options: dict[str, bool], message: str) -> None:
    with pytest.raises(errors.BadRequest, match=message):
        paging.sort(q(*pairs), ("name", "size"), **options)


def test_an_api_words_its_own_faults() -> None:
    glance = paging.Wording(not_integer="{name} param must be an integer", too_small="{name} param must be positive",
                            sort_key="Invalid sort key: {key}. It must be one of the following: {keys}.")
    with pytest.raises(errors.BadRequest) as bad:
        paging.limit(q(("limit", "-1")), wording=glance)
    assert bad.value.message == "limit param must be positive"
    with pytest.raises(errors.BadRequest) as bad:
        paging.sort(q(("sort_key", "x")), ("name", "id"), wording=glance)
    assert bad.value.message == "Invalid sort key: x. It must be one of the following: name, id."


def test_page_marker_and_tiebreaks() -> None:
    page = paging.page(q(("limit", "2"), ("marker", "m1"), ("sort", "name:asc")), ("name",), default_limit=10)
    assert page == paging.Page(2, "m1", [("name", "asc")])
    assert paging.page(q(("marker", ""))).marker is None
    assert paging.with_tiebreaks(page.sort, ("created_at", "id")) == [("name", "asc"), ("created_at", "asc"),
                                                                      ("id", "asc")]
    assert paging.with_tiebreaks([], ("id",)) == [("id", "desc")]


def test_paginate_and_params_adapter() -> None:
    items = ["a", "b", "c", "d"]
    assert paging.paginate(items, 2, "a", str) == ["b", "c"]
    with pytest.raises(errors.BadRequest, match=r"marker \[z\] not found"):
        paging.paginate(items, None, "z", str)
    plain = paging.Params({"limit": "3", "sort_key": "name"})
    assert paging.limit(plain) == 3 and paging.sort(plain, None) == [("name", "desc")]
    repeated = paging.Params({"sort_key": "name"}, lambda name: {"sort_key": ["name", "size"]}.get(name, []))
    assert paging.sort(repeated, None) == [("name", "desc"), ("size", "desc")]
