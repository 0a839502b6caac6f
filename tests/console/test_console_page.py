"""The noVNC page in headless Chromium: the URL `openstack console url show` answers loads tinystack's page and
the vendored noVNC modules, opens the websocket its ``path`` names and completes the RFB handshake with a
stand-in VNC server at the server's socket; the same URL opened again fails (single use)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.console.standin import node_socket, rfb
from tests.livecloud import LiveCloud

pytestmark = [pytest.mark.browser, pytest.mark.privileged]

webdriver = pytest.importorskip("selenium.webdriver")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("chromium and chromedriver are not installed (scripts/setup --test installs them)")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = shutil.which("chromium") or ""
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver") or ""))
    try:
        yield driver
    finally:
        driver.quit()


def status_after(driver: Any, url: str, prefix: str) -> str:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, 20).until(
        lambda d: d.find_element("id", "status").text.startswith(prefix))
    return str(driver.find_element("id", "status").text)


def test_novnc_page_connects_once(live: LiveCloud, browser: Any) -> None:
    conn = live.conn("demo")
    image = conn.image.create_image(name="console-page-img", data=b"\0" * 4096, disk_format="raw",
                                    container_format="bare")
    server = conn.compute.create_server(name="console-page", image_id=image.id, flavor_id="42", networks="none")
    try:
        server = conn.compute.wait_for_server(server, status="ACTIVE", wait=30, interval=0.1)
        url = live.cli_json("console", "url", "show", server.id, cloud="demo")["url"]
        with node_socket(live, server.id, "novnc", rfb):
            assert status_after(browser, url, "Connected") == "Connected to instance"
            assert browser.title == "stand-in"  # the desktop name ServerInit sent
            assert status_after(browser, url, "Cannot connect").startswith("Cannot connect")
    finally:
        conn.compute.delete_server(server, ignore_missing=True)
        conn.image.delete_image(image, ignore_missing=True)
