"""In headless Chromium: Create Image with a file, sent by the page's script with XMLHttpRequest; its upload
progress bar moves to 100 %, the answer's page (with its message) replaces the form's, and the image goes active.
The same form without the script is the api tier's (test_pages)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dashboard.browser import Browser
from tests.dashboard.conftest import ARTIFACTS
from tests.dashboard.test_browser_day6 import login
from tests.livecloud import LiveCloud
from tests.waiting import wait_for

pytestmark = pytest.mark.browser

# Every value the bar shows, kept in sessionStorage: the answer's page replaces the document when it arrives.
WATCH_BAR = """
sessionStorage.setItem("bar", "[]");
var bar = document.getElementById("upload-bar");
new MutationObserver(function () {
  var seen = JSON.parse(sessionStorage.getItem("bar"));
  seen.push(Number(bar.value));
  sessionStorage.setItem("bar", JSON.stringify(seen));
}).observe(bar, {attributes: true, attributeFilter: ["value"]});
"""


@pytest.fixture(scope="module")
def web(chrome: Any, live: LiveCloud) -> Iterator[Browser]:
    yield Browser(chrome, live.url("dashboard"), ARTIFACTS)


def test_create_image_shows_upload_progress_and_the_image_goes_active(web: Browser, live: LiveCloud,
                                                                     tmp_path: Path) -> None:
    b = web
    conn = live.project_conn("brupload")
    name = f"uploaded-{uuid.uuid4().hex[:6]}"
    data = uuid.uuid4().bytes * (8 * 1024 * 1024 // 16)  # 8 MiB: several progress events even on loopback
    disk = b.file(tmp_path / "disk.raw", data)
    login(b, live, conn.config.name)
    b.go("/project/images/")
    assert b.css("#upload-progress").get_attribute("hidden") is not None
    # No name: the form's error, shown in place as the API's are, and nothing made.
    b.fill("#create-image", {"name": " ", "image_file": str(disk)}, submit=False)
    b.css("#create-image-submit").click()
    b.wait_text(".alert-error", "Image Name is required", timeout=60)
    assert b.d.current_url.endswith("/project/images/") and not list(conn.image.images(owner=conn.current_project_id))
    b.d.execute_script(WATCH_BAR)
    b.fill("#create-image", {"name": name, "disk_format": "raw", "image_file": str(disk)}, submit=False)
    b.css("#create-image-submit").click()
    # The answer replaces the page in place: the flash of the redirect's page, at that page's URL.
    b.wait_text(".alert-success", f"Created image {name}", timeout=120)
    b.no_error()
    seen = json.loads(b.d.execute_script("return sessionStorage.getItem('bar');"))
    assert seen and seen[-1] == 100 and seen == sorted(seen), seen
    assert b.d.current_url.endswith("/project/images/")
    image = wait_for(lambda: next((i for i in conn.image.images() if i.name == name and i.status == "active"), None),
                     60, "the uploaded image active")
    assert image.size == len(data)
    b.wait_text("#images", name)
    assert "active" in b.row("#images", name).text
    b.shot("image-uploaded")
    conn.image.delete_image(image.id)
