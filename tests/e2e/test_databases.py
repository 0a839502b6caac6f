"""The identity flows on PostgreSQL and MySQL (MariaDB) as well as SQLite: schema, rules and revocation."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.databases import available, scratch_database
from tests.livecloud import LiveCloud

pytestmark = [pytest.mark.db, pytest.mark.e2e, pytest.mark.db]


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_identity_on(kind: str, tmp_path: Path) -> None:
    if not available(kind):
        pytest.fail(f"no {kind} server on loopback: the test command's setup should provide one")
    with scratch_database(kind) as url:
        cloud = LiveCloud(tmp_path, database__connection=url)
        try:
            admin = cloud.conn("admin")
            domain = admin.identity.create_domain(name="acme")
            project = admin.identity.create_project(name="web", domain_id=domain.id)
            user = admin.identity.create_user(name="alice", domain_id=domain.id, password="s3cret-pass")
            member = admin.identity.find_role("member")
            admin.identity.assign_project_role_to_user(project, user, member)
            alice = cloud.conn(username="alice", password="s3cret-pass",
                               user_domain_name="acme", project_name="web", project_domain_name="acme")
            token = alice.auth_token
            check = requests.get(cloud.url("identity") + "/auth/tokens", timeout=10,
                                 headers={"X-Auth-Token": admin.auth_token, "X-Subject-Token": token})
            assert check.status_code == 200
            assert {"member", "reader"} <= {r["name"] for r in check.json()["token"]["roles"]}
            admin.identity.unassign_project_role_from_user(project, user, member)
            check = requests.get(cloud.url("identity") + "/auth/tokens", timeout=10,
                                 headers={"X-Auth-Token": admin.auth_token, "X-Subject-Token": token})
            assert check.status_code == 404
        finally:
            cloud.stop()


def test_cloud_on_postgresql_and_rabbitmq(tmp_path: Path) -> None:
    """The split-ready configuration: PostgreSQL for state and RabbitMQ for the bus."""
    with scratch_database("postgresql") as url:
        cloud = LiveCloud(tmp_path, database__connection=url, bus__transport_url="amqp://guest:guest@127.0.0.1:5672/")
        try:
            assert type(cloud.cloud.runtime.bus).__name__ == "RabbitBus"  # type: ignore[union-attr]
            assert cloud.conn("demo").auth_token
            assert [p.name for p in cloud.conn("demo").identity.user_projects(cloud.conn("demo").current_user_id)] \
                == ["demo"]
        finally:
            cloud.stop()
