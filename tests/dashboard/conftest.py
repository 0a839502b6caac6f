"""Dashboard test helpers: logging in over plain HTTP (api tier) and a headless Chromium (browser tier)."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.livecloud import LiveCloud

CHROMIUM = os.environ.get("TINYSTACK_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("TINYSTACK_CHROMEDRIVER", "/usr/bin/chromedriver")
# Screenshots of the main pages, kept after the run (the CI's artifacts).
ARTIFACTS = Path(os.environ.get("TINYSTACK_ARTIFACTS", Path(__file__).resolve().parents[2] / "artifacts")) / "dashboard"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def password(live: LiveCloud, cloud: str) -> tuple[str, str]:
    """The user name and password of a cloud in the live cloud's clouds.yaml."""
    auth = yaml.safe_load(live.clouds_yaml.read_text())["clouds"][cloud]["auth"]
    return auth["username"], auth["password"]


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "the page has no CSRF token"
    return match.group(1)


def http_login(live: LiveCloud, cloud: str = "demo") -> requests.Session:
    """A ``requests`` session logged in to the dashboard as the user of ``cloud``."""
    user, pw = password(live, cloud)
    s = requests.Session()
    base = live.url("dashboard")
    token = csrf_of(s.get(f"{base}/auth/login/", timeout=30).text)
    r = s.post(f"{base}/auth/login/", data={"csrf_token": token, "domain": "Default", "username": user, "password": pw},
               allow_redirects=False, timeout=30)
    assert r.status_code == 303, r.text
    return s


@pytest.fixture(scope="module")
def chrome() -> Iterator[Any]:
    """Headless Chromium from Debian's package, through its chromedriver, with a fresh profile."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip(f"{CHROMIUM} or {CHROMEDRIVER} missing: scripts/setup --test installs chromium and chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="tinystack-chromium-")
    downloads = Path(profile) / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,1000", f"--user-data-dir={profile}/profile"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.downloads = downloads  # type: ignore[attr-defined]
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
