"""ServiceAuth against the live cloud: token issue and reuse, renewal, catalog lookups, bad credentials."""

from __future__ import annotations

import asyncio
import datetime as dt
import stat
from pathlib import Path

import pytest
import requests
import yaml

from tests.livecloud import LiveCloud
from tinystack.core import svcauth
from tinystack.core.svcauth import ServiceAuth, ServiceAuthError

pytestmark = pytest.mark.api


def service_yaml(live: LiveCloud, path: Path, **changes: str) -> Path:
    """Until the identity bootstrap writes STATE_DIR/service.yaml: the admin cloud's credentials."""
    admin = yaml.safe_load(live.clouds_yaml.read_text())["clouds"]["admin"]["auth"]
    values = {"auth_url": admin["auth_url"], "username": admin["username"], "password": admin["password"],
              "project_name": admin["project_name"],
              "user_domain_name": admin.get("user_domain_name", "Default"),
              "project_domain_name": admin.get("project_domain_name", "Default")}
    values.update(changes)
    svcauth.write_file(path, values)
    return path


def test_token_is_cached_and_catalog_resolves(live: LiveCloud, tmp_path: Path) -> None:
    path = service_yaml(live, tmp_path / "service.yaml")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    auth = ServiceAuth.from_file(path)

    async def scenario() -> None:
        first = await auth.token()
        assert await auth.token() == first  # cached
        assert await auth.endpoint("image") == live.url("image").rstrip("/")
        assert await auth.endpoint("identity") == live.url("identity").rstrip("/")
        with pytest.raises(ServiceAuthError):
            await auth.endpoint("no-such-service")
        # Within 5 minutes of expiry it renews.
        auth._expires = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=4)
        renewed = await auth.token()  # a new Fernet token differs even within the same second (random IV)
        assert renewed != first
        assert auth._expires is not None and auth._expires > dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)

    asyncio.run(scenario())
    # The identity service validates the token it issued.
    conn = live.conn("admin")
    resp = requests.get(f"{live.url('identity')}/auth/tokens", timeout=10,
                        headers={"X-Auth-Token": str(conn.auth_token), "X-Subject-Token": str(auth._token)})
    assert resp.status_code == 200 and resp.json()["token"]["project"]["name"] == "admin"


def test_wrong_password_is_a_clear_error(live: LiveCloud, tmp_path: Path) -> None:
    auth = ServiceAuth.from_file(service_yaml(live, tmp_path / "service.yaml", password="wrong"))
    with pytest.raises(ServiceAuthError, match="401"):
        asyncio.run(auth.token())


def test_incomplete_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "service.yaml"
    path.write_text("auth_url: http://127.0.0.1:1/v3\nusername: nova\n")
    with pytest.raises(ValueError, match="password"):
        ServiceAuth.from_file(path)
