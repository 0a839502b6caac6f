"""The dashboard's server time with N instances (default 1,000, fake compute driver): the median time of the
Instances, Volumes, Networks and Network Topology pages, each against two same-run baselines: the raw API calls
that page makes (one after another, from a plain client), and the calls that list everything the way
``openstack server list --long`` does (what the pages made before they were paged); the time from submitting
the login form to a usable Instances page in headless Chromium, and where that time goes.

Each page is timed twice: as a returning or refreshing view (the session's short-lived look-ups in place: image
names, the topology's instances, which a refresh asks for by ``changes-since``) and as a first view (those emptied
before every request); the ratio against the page's own API calls uses the first view, which makes all of them.

The cloud hashes passwords with the real default (``identity.password_hash_rounds`` 12, bcrypt), not the test
clouds' 4, so the login figure includes the password check a real login pays.

Usage: python -m benchmarks.dashboard [instances]
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from tests.dashboard.conftest import CHROMEDRIVER, CHROMIUM, csrf_of
from tests.livecloud import LiveCloud
from tinystack.dashboard.session import COOKIE
from tinystack.dashboard.web import STORE

RUNS = 11


def median_ms(get: Any, runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        get()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def login(base: str, user: str, password: str) -> requests.Session:
    s = requests.Session()
    token = csrf_of(s.get(f"{base}/auth/login/", timeout=30).text)
    r = s.post(f"{base}/auth/login/", data={"csrf_token": token, "domain": "Default", "username": user,
                                             "password": password}, timeout=60)
    r.raise_for_status()
    return s


def boot(live: LiveCloud, n: int, agent_dir: Path) -> tuple[Any, float]:
    from tinystack.compute.agent import ComputeAgent
    from tinystack.compute.drivers.fake import FakeDriver

    rt = live.cloud.runtime
    assert rt is not None
    agent = ComputeAgent(rt.bus, f"tsbench-{secrets.token_hex(3)}", FakeDriver(vcpus=4096, memory_mb=10**7, local_gb=10**5),
                         agent_dir)
    live.call(agent.start())
    conn = live.conn("admin")
    image = conn.image.create_image(name="bench", data=b"\0" * 1024, disk_format="raw", container_format="bare")
    base = live.url("compute")
    s = requests.Session()
    s.headers.update({"X-Auth-Token": conn.auth_token, "OpenStack-API-Version": "compute 2.96"})
    s.put(f"{base}/os-quota-sets/{conn.current_project_id}", json={"quota_set": {"instances": -1, "cores": -1, "ram": -1}},
          timeout=30).raise_for_status()
    started = time.perf_counter()
    for _ in range(0, n, 100):
        s.post(f"{base}/servers", json={"server": {"name": "bench", "imageRef": image.id, "flavorRef": "42",
                                                   "networks": "none", "min_count": 100, "max_count": 100}},
               timeout=120).raise_for_status()
    while len(s.get(f"{base}/servers?status=ACTIVE&limit={n}", timeout=60).json()["servers"]) < n:
        time.sleep(0.5)
    return agent, time.perf_counter() - started


def api_calls(live: LiveCloud, token: str, project: str) -> dict[str, tuple[list[str], list[str]]]:
    """Per page: the API calls it makes for its first page (with what it caches per session counted as made), and
    the calls that list everything (the page before paging, ``server list --long`` and the rest)."""
    c, i, n = live.url("compute"), live.url("image"), live.url("network")
    v = live.url("volume").replace("$(project_id)s", project)
    month = datetime.now(UTC).date()
    usage = (f"{c}/os-simple-tenant-usage/{project}?start={month.replace(day=1).isoformat()}T00:00:00"
             f"&end={month.isoformat()}T23:59:59.999999&detailed=1")
    overview = [f"{c}/limits", f"{v}/limits", f"{n}/v2.0/quotas/{project}/details", usage]
    return {
        # The landing page after a login: quota bars and this month's usage of every instance.
        "/project/": (overview, overview),
        "/project/instances/": ([f"{c}/servers/detail?limit=21", f"{i}/v2/images?limit=1000"],
                                [f"{c}/servers/detail?limit=1000", f"{i}/v2/images?limit=1000"]),
        "/project/volumes/": ([f"{v}/volumes/detail?limit=21", f"{i}/v2/images?limit=1000&status=active",
                               f"{v}/snapshots?status=available", f"{v}/volumes?status=available", f"{v}/types"],
                              [f"{v}/volumes/detail?limit=1000", f"{c}/servers?limit=1000", f"{i}/v2/images?limit=1000",
                               f"{v}/snapshots/detail?limit=1000", f"{v}/types"]),
        "/project/networks/": ([f"{n}/v2.0/networks", f"{n}/v2.0/subnets"],
                               [f"{n}/v2.0/networks", f"{n}/v2.0/subnets"]),
        "/project/network_topology/": (
            [f"{n}/v2.0/networks?fields=id,name,router:external", f"{n}/v2.0/subnets?fields=network_id,cidr",
             f"{n}/v2.0/ports?fields=network_id,device_id,fixed_ips,status",
             f"{n}/v2.0/routers?fields=id,name,status,external_gateway_info", f"{c}/servers/detail?limit=1000"],
            [f"{n}/v2.0/networks", f"{n}/v2.0/subnets", f"{n}/v2.0/ports", f"{n}/v2.0/routers",
             f"{c}/servers/detail?limit=1000"]),
    }


def login_parts(live: LiveCloud, base: str, user: str, password: str) -> dict[str, float]:
    """Where a login's time goes, each part alone, median ms: the password token Keystone issues (bcrypt), the
    dashboard's whole login POST (that token, the projects, the scoped token), the Instances page after it."""
    body = {"auth": {"identity": {"methods": ["password"], "password": {
        "user": {"name": user, "password": password, "domain": {"name": "Default"}}}}}}
    out = {"keystone password token": median_ms(lambda: requests.post(f"{live.url('identity')}/auth/tokens", json=body,
                                                                      timeout=60).raise_for_status(), 5)}
    posts, pages = [], []
    for _ in range(5):
        s = requests.Session()
        token = csrf_of(s.get(f"{base}/auth/login/", timeout=30).text)
        started = time.perf_counter()
        s.post(f"{base}/auth/login/", data={"csrf_token": token, "domain": "Default", "username": user,
                                             "password": password, "next": "/project/instances/"},
               allow_redirects=False, timeout=60).raise_for_status()
        posts.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        s.get(f"{base}/project/instances/", timeout=60).raise_for_status()
        pages.append((time.perf_counter() - started) * 1000)
    out["dashboard login POST"] = statistics.median(posts)
    out["first Instances page"] = statistics.median(pages)
    return out


def browser_login_s(base: str, user: str, password: str) -> float:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    profile = tempfile.mkdtemp(prefix="tsdashbench-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        times = []
        for _ in range(3):
            driver.delete_all_cookies()
            driver.get(f"{base}/auth/login/?next=/project/instances/")
            driver.find_element(By.NAME, "username").send_keys(user)
            driver.find_element(By.NAME, "password").send_keys(password)
            started = time.perf_counter()
            driver.find_element(By.ID, "loginBtn").click()
            WebDriverWait(driver, 30, poll_frequency=0.01).until(
                lambda d: d.find_elements(By.ID, "instances") and d.execute_script("return document.readyState") == "complete")
            times.append(time.perf_counter() - started)
        return statistics.median(times)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def main(n: int) -> None:
    agent_dir = Path(tempfile.mkdtemp(prefix="tsdashbench-agent-"))
    import yaml

    state = Path(tempfile.mkdtemp(prefix="tsdashbench-"))
    live = LiveCloud(state, identity__password_hash_rounds="12")
    try:
        print(f"load before: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores")
        agent, boot_s = boot(live, n, agent_dir)
        auth = yaml.safe_load(live.clouds_yaml.read_text())["clouds"]["admin"]["auth"]
        conn = live.conn("admin")
        base = live.url("dashboard")
        s = login(base, auth["username"], auth["password"])
        raw = requests.Session()
        raw.headers.update({"X-Auth-Token": conn.auth_token})
        count = len(raw.get(f"{live.url('compute')}/servers?limit=1000", timeout=60).json()["servers"])
        rows = len(re.findall(r"<tr data-id=", s.get(f"{base}/project/instances/", timeout=60).text))
        print(f"instances: {count} in the admin project, {rows} on the first page (booted through the API + fake "
              f"agent in {boot_s:.1f}s)")
        sess = live.cloud._frontends[0].app[STORE].get(s.cookies[COOKIE])
        assert sess is not None

        def cold(page: str) -> None:
            # A first view: the session's short-lived look-ups (image names, the topology's instances) emptied.
            sess.cache.clear()
            s.get(base + page, timeout=60).raise_for_status()

        for page, (calls, everything) in api_calls(live, conn.auth_token, conn.current_project_id).items():
            page_ms = median_ms(lambda page=page: s.get(base + page, timeout=60).raise_for_status())
            cold_ms = median_ms(lambda page=page: cold(page))
            api_ms = median_ms(lambda calls=calls: [raw.get(u, timeout=60).raise_for_status() for u in calls])
            all_ms = median_ms(lambda calls=everything: [raw.get(u, timeout=60).raise_for_status() for u in calls])
            print(f"{page:<28} page median {page_ms:7.1f} ms, first view {cold_ms:7.1f} ms (target <= 100 ms); its "
                  f"{len(calls)} API calls of a first view one after another {api_ms:7.1f} ms, ratio "
                  f"{cold_ms / api_ms:.2f}x; listing everything {all_ms:7.1f} ms, ratio {page_ms / all_ms:.2f}x "
                  f"(first view {cold_ms / all_ms:.2f}x)")
        for part, ms in login_parts(live, base, auth["username"], auth["password"]).items():
            print(f"login part: {part:<26} {ms:7.1f} ms (median of 5)")
        print(f"login to a usable Instances page ({count} instances), headless Chromium, median of 3: "
              f"{browser_login_s(base, auth['username'], auth['password']):.2f} s (target <= 1 s)")
        demo = yaml.safe_load(live.clouds_yaml.read_text())["clouds"]["demo"]["auth"]
        print(f"login to a usable Instances page (the demo project, no instances), headless Chromium, median of 3: "
              f"{browser_login_s(base, demo['username'], demo['password']):.2f} s")
        print(f"load after: {os.getloadavg()[0]:.2f} (1 min)")
        live.call(agent.stop(cleanup=True))
    finally:
        live.stop()
        # The cloud's state and the fake agent's directory: nothing of the run is kept.
        shutil.rmtree(state, ignore_errors=True)
        shutil.rmtree(agent_dir, ignore_errors=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
