"""In headless Chromium, as a user clicks: Project > Object Store > Containers (create a container, a folder,
upload a file with the file input, make the container public, then fetch the object with plain HTTP and no token,
download it through the dashboard, make it private again, delete everything), and a volume backup whose status
turns available on the Backups page without a reload."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from selenium.webdriver.common.by import By

from tests.dashboard.browser import Browser
from tests.dashboard.conftest import ARTIFACTS
from tests.dashboard.test_browser_day6 import login
from tests.livecloud import LiveCloud
from tests.waiting import wait_for

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def web(chrome: Any, live: LiveCloud) -> Iterator[Browser]:
    yield Browser(chrome, live.url("dashboard"), ARTIFACTS)


def test_object_store_upload_public_fetch(web: Browser, live: LiveCloud, tmp_path: Path) -> None:
    b = web
    conn = live.project_conn("brstore")
    login(b, live, conn.config.name)
    name = f"web-{uuid.uuid4().hex[:6]}"
    b.go("/project/")
    b.click(b.d.find_element(By.LINK_TEXT, "Containers"))
    b.fill("#create-container", {"name": name})
    b.no_error()
    b.wait_text("h1", f"Container: {name}")
    assert b.css("#container-access").text == "Private"
    b.fill("#create-folder", {"name": "site"})
    b.no_error()
    b.wait_text("#folder-crumbs", "site")
    # The file input, as a user picks a file.
    content = b"<h1>hello from the object store</h1>\n" + uuid.uuid4().hex.encode()
    path = b.file(tmp_path / "index.html", content)
    b.css("#id_object_file").send_keys(str(path))
    b.click(b.css("#upload-object-submit"))
    b.no_error()
    b.wait_text(".alert-success", "Uploaded site/index.html")
    assert b.row("#objects", "index.html").get_attribute("data-name") == "site/index.html"
    b.shot("containers-objects")
    # Make Public: the page shows the public URL, and plain HTTP without a token reads the object.
    b.click(b.css("#make-public"))
    b.no_error()
    public = b.css("#public-url").get_attribute("href")
    link = b.row("#objects", "index.html").find_element(By.CSS_SELECTOR, "a.public-link").get_attribute("href")
    assert link == f"{public}/site/index.html"
    got = requests.get(link, timeout=30)
    assert got.status_code == 200 and got.content == content
    assert "site/index.html" in requests.get(public, timeout=30).text  # .rlistings: the listing too
    # Download through the dashboard (with the user's token).
    b.click(b.row("#objects", "index.html").find_element(By.CSS_SELECTOR, "a.download"), navigates=False)
    assert b.downloaded("index.html").read_bytes() == content
    # Make Private: the same URL is refused without a token.
    b.click(b.css("#make-private"))
    assert b.css("#container-access").text == "Private"
    assert requests.get(link, timeout=30).status_code in (401, 403)
    # Delete the object, the folder and the container through the pages.
    b.click(b.row("#objects", "index.html").find_element(By.CSS_SELECTOR, "button"))
    b.no_error()
    b.wait_text(".alert-success", "Deleted site/index.html")
    b.click(b.d.find_element(By.CSS_SELECTOR, "#folder-crumbs a"))
    b.click(b.row("#objects", "site").find_element(By.XPATH, ".//button[text()='Delete Folder']"))
    b.no_error()
    assert not b.all("#objects tr.folder")
    b.click(b.css("#delete-container button"))
    b.no_error()
    b.wait_text(".alert-success", f"Deleted container {name}")
    assert list(conn.object_store.containers()) == []


def test_backup_status_without_reload(web: Browser, live: LiveCloud) -> None:
    b = web
    conn = live.project_conn("brbackup")
    vol = conn.block_storage.create_volume(size=1, name="br-vol")
    conn.block_storage.wait_for_status(vol, "available", wait=60)
    login(b, live, conn.config.name)
    b.go(f"/project/volumes/{vol.id}/")
    b.fill("#backup-volume", {"name": "br-backup"})
    b.no_error()
    b.wait_text(".alert-success", "Creating volume backup br-backup")
    b.mark()
    b.wait(lambda: b.row("#backups", "br-backup").get_attribute("data-status") == "available", 120,
           "the backup never showed available")
    assert b.marked(), "the page was reloaded"
    b.shot("backups")
    b.click(b.row("#backups", "br-backup").find_element(By.XPATH, ".//button[text()='Delete Volume Backup']"))
    wait_for(lambda: not list(conn.block_storage.backups()), 120, "the backup deleted")
    conn.block_storage.delete_volume(vol)
