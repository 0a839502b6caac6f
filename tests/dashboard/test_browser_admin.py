"""The admin flows in headless Chromium (a project, a member user, a flavor, a public image, the hypervisor
usage bars), then what a member may not do: no Admin section, 403 on admin URLs, no form without its CSRF
token, and names shown as text, never as markup."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.dashboard.browser import Browser
from tests.dashboard.conftest import ARTIFACTS
from tests.dashboard.test_browser_day6 import login
from tests.livecloud import LiveCloud

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def web(chrome: Any, live: LiveCloud) -> Iterator[Browser]:
    yield Browser(chrome, live.url("dashboard"), ARTIFACTS)


def test_admin_creates_project_user_flavor_image(web: Browser, live: LiveCloud, tmp_path: Path) -> None:
    b, tag = web, uuid.uuid4().hex[:6]
    login(b, live, "admin")
    assert b.all("#nav-admin") and b.all("#nav-identity")

    b.go("/identity/projects/")
    b.fill("#create-project", {"name": f"adm-proj-{tag}"})
    b.wait_text("#projects", f"adm-proj-{tag}")
    b.no_error()

    b.go("/identity/users/")
    b.fill("#create-user", {"name": f"adm-user-{tag}", "password": "pw-" + tag, "project": f"adm-proj-{tag}",
                            "role": "member"})
    b.wait_text("#users", f"adm-user-{tag}")
    b.no_error()
    b.shot("identity-users")

    b.go("/admin/flavors/")
    b.fill("#create-flavor", {"name": f"adm-flavor-{tag}", "vcpus": "2", "ram": "256", "disk": "2"})
    b.wait_text("#flavors", f"adm-flavor-{tag}")
    b.no_error()

    b.go("/admin/images/")
    disk = tmp_path / "public.raw"
    disk.write_bytes(b"\1" * 4096)
    b.fill("#create-image", {"name": f"adm-image-{tag}", "visibility": "Public", "image_file": str(disk)})
    b.wait_text("#images", f"adm-image-{tag}")
    b.no_error()
    assert "public" in b.row("#images", f"adm-image-{tag}").text

    b.go("/admin/hypervisors/")
    meters = b.all("#hypervisor-summary meter")
    assert len(meters) == 3 and float(meters[0].get_attribute("max")) >= 1
    assert b.all("#hypervisors tbody tr meter")
    b.shot("admin-hypervisors")
    b.go("/admin/instances/")
    b.no_error()

    admin = live.conn("admin")
    project = admin.identity.find_project(f"adm-proj-{tag}", ignore_missing=False)
    user = admin.identity.find_user(f"adm-user-{tag}", ignore_missing=False)
    roles = [a.role["id"] for a in admin.identity.role_assignments(user_id=user.id, project_id=project.id)]
    assert admin.identity.find_role("member").id in roles
    flavor = admin.compute.find_flavor(f"adm-flavor-{tag}", ignore_missing=False)
    assert (flavor.vcpus, flavor.ram, flavor.disk) == (2, 256, 2)
    image = admin.image.find_image(f"adm-image-{tag}", ignore_missing=False)
    assert image.visibility == "public" and image.status == "active"

    # The new member: no admin section, 403 from admin URLs, CSRF and escaping.
    b.go("/auth/login/")
    b.click(b.css("#logout"))
    b.fill("#login-form", {"domain": "Default", "username": f"adm-user-{tag}", "password": "pw-" + tag})
    b.wait_text("#current-user", f"adm-user-{tag}")
    assert not b.all("#nav-admin") and not b.all('a[href="/identity/users/"]')
    b.go("/identity/projects/")  # Horizon's Identity > Projects for a member: their own, read only
    assert b.row("#projects", f"adm-proj-{tag}") and "admin" not in b.css("#projects tbody").text.split()
    assert not b.all("#create-project")
    for path in ("/admin/hypervisors/", "/admin/instances/", "/admin/flavors/", "/identity/users/"):
        b.go(path)
        assert "This page is for administrators." in b.body(), path
    s = requests.Session()
    for c in b.d.get_cookies():
        s.cookies.set(c["name"], c["value"])
    base = live.url("dashboard")
    assert s.get(f"{base}/admin/hypervisors/", timeout=30).status_code == 403
    assert s.get(f"{base}/identity/roles/", timeout=30).status_code == 403
    r = s.post(f"{base}/admin/flavors/create/", data={"name": "nope", "vcpus": "1", "ram": "1", "disk": "1",
                                                       "csrf_token": "wrong"}, timeout=30)
    assert r.status_code == 403
    r = s.post(f"{base}/project/networks/create/", data={"name": f"no-csrf-{tag}"}, timeout=30)
    assert r.status_code == 403 and "CSRF" in r.text

    hostile = f"<script>window.__xss='{tag}'</script><img src=x onerror=\"window.__xss='{tag}'\">"
    b.go("/project/networks/")
    b.fill("#create-network", {"name": hostile, "with_subnet": False})
    b.go("/project/networks/")
    b.wait_text("#networks", "<script>")
    assert b.d.execute_script("return window.__xss || null;") is None
    member = live.conn(username=f"adm-user-{tag}", password="pw-" + tag, project_id=project.id,
                       user_domain_id="default")
    names = [n.name for n in member.network.networks()]
    assert hostile in names and f"no-csrf-{tag}" not in names
    b.shot("escaped-name")
