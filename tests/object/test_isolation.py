"""Who may touch an account: its project's operator roles, ResellerAdmin anywhere, others only through container
ACLs; no token is 401, another project's token 403, and a refused write stores nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.livecloud import LiveCloud
from tests.object.conftest import Http, http_for

pytestmark = [pytest.mark.api, pytest.mark.e2e]


@pytest.fixture(scope="module")
def owner(live: LiveCloud) -> Http:
    http = http_for(live.project_conn("own"))
    assert http("PUT", "/private").status_code == 201
    assert http("PUT", "/private/secret", data=b"s3cret").status_code == 201
    return http


@pytest.fixture(scope="module")
def other(live: LiveCloud) -> Http:
    return http_for(live.project_conn("oth"))


def as_other(other: Http, owner: Http) -> Http:
    """The other project's token against the owner's account."""
    return Http(owner.url, other.token)


@pytest.mark.parametrize(("method", "path"), [
    ("GET", ""), ("HEAD", ""), ("POST", ""), ("GET", "/private"), ("HEAD", "/private"), ("PUT", "/private"),
    ("POST", "/private"), ("DELETE", "/private"), ("GET", "/private/secret"), ("HEAD", "/private/secret"),
    ("PUT", "/private/new"), ("POST", "/private/secret"), ("DELETE", "/private/secret"), ("PUT", "/theirs"),
])
def test_other_project_is_refused(owner: Http, other: Http, method: str, path: str) -> None:
    intruder = as_other(other, owner)
    kw: dict[str, Any] = {"data": b"x"} if method == "PUT" else {}
    assert intruder(method, path, headers={"X-Container-Meta-Evil": "1", "X-Object-Meta-Evil": "1"}, **kw).status_code == 403
    assert owner(method, path, token=False, **kw).status_code == 401
    assert owner(method, path, headers={"X-Auth-Token": "not-a-token"}, token=False, **kw).status_code == 401


def test_refused_writes_change_nothing(owner: Http, other: Http) -> None:
    assert owner("GET", "/private/secret").content == b"s3cret"
    assert owner("GET", "/private").text.split() == ["secret"]
    assert "X-Container-Meta-Evil" not in owner("HEAD", "/private").headers
    assert "X-Object-Meta-Evil" not in owner("HEAD", "/private/secret").headers
    assert owner("HEAD", "/theirs").status_code == 404
    assert owner("HEAD", "/private/new").status_code == 404


def test_project_without_operator_role_is_refused(live: LiveCloud) -> None:
    reader = http_for(live.project_conn("rdr", role="reader"))
    assert reader("PUT", "/mine").status_code == 403
    assert reader("GET", "").status_code == 403


def test_container_acls(live: LiveCloud, owner: Http, other: Http) -> None:
    other_project = other.url.rsplit("AUTH_", 1)[1]
    intruder = as_other(other, owner)
    assert owner("PUT", "/shared", headers={"X-Container-Read": f"{other_project}:*"}).status_code == 201
    owner("PUT", "/shared/doc", data=b"shared")
    assert intruder("GET", "/shared/doc").content == b"shared"
    assert intruder("GET", "/shared").text.split() == ["doc"]
    assert intruder("PUT", "/shared/doc", data=b"overwrite").status_code == 403
    assert intruder("POST", "/shared", headers={"X-Container-Read": "*:*"}).status_code == 403
    owner("POST", "/shared", headers={"X-Container-Write": f"{other_project}:*"})
    assert intruder("PUT", "/shared/theirs", data=b"w").status_code == 201
    # Public objects: .r:* reads without a token; listing needs .rlistings too.
    owner("POST", "/shared", headers={"X-Container-Read": ".r:*"})
    assert owner("GET", "/shared/doc", token=False).content == b"shared"
    assert owner("GET", "/shared", token=False).status_code == 401
    owner("POST", "/shared", headers={"X-Container-Read": ".r:*,.rlistings"})
    assert sorted(owner("GET", "/shared", token=False).text.split()) == ["doc", "theirs"]
    assert owner("PUT", "/shared/anon", data=b"x", token=False).status_code == 401


def test_reseller_admin_reaches_every_account(live: LiveCloud, owner: Http) -> None:
    reseller = http_for(live.project_conn("rsl", role="ResellerAdmin"))
    assert Http(owner.url, reseller.token)("GET", "/private/secret").content == b"s3cret"
    assert Http(owner.url, reseller.token)("POST", "", headers={"X-Account-Meta-Quota-Bytes": "100"}).status_code == 204
    assert owner("PUT", "/private/too-big", data=b"x" * 200).status_code == 413
    assert owner("POST", "", headers={"X-Account-Meta-Quota-Bytes": "1000000"}).status_code == 403
    Http(owner.url, reseller.token)("POST", "", headers={"X-Remove-Account-Meta-Quota-Bytes": "x"})
    assert owner("PUT", "/private/fits", data=b"x" * 200).status_code == 201
