"""The dashboard's paged tables over plain HTTP (api tier): Instances and Volumes show 20 rows a page in the
API's order with working next/prev links, and the page's refresh keeps its place; lists of one project only."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests

from tests.dashboard.conftest import http_login
from tests.livecloud import LiveCloud

pytestmark = pytest.mark.api

ROW = re.compile(r'<tr data-id="([0-9a-f-]+)"')
LINK = re.compile(r'<a href="([^"]+)" id="(prev|next)-page"')


def _links(html: str) -> dict[str, str]:
    return {kind: href.replace("&amp;", "&") for href, kind in LINK.findall(html)}


def _walk(s: requests.Session, base: str, path: str) -> tuple[list[list[str]], list[dict[str, str]]]:
    """Every page from the first by its next links: the row ids and the links of each."""
    pages, links, url = [], [], base + path
    while True:
        html = s.get(url, timeout=30).text
        pages.append(ROW.findall(html))
        links.append(_links(html))
        if "next" not in links[-1]:
            return pages, links
        url = base + links[-1]["next"]


@pytest.fixture(scope="module")
def crowded(live: LiveCloud) -> Any:
    """A project of its own with 25 instances and 23 volumes, and its cloud name in clouds.yaml."""
    conn = live.project_conn("paging")
    admin = live.conn("admin")
    admin.set_compute_quotas(conn.current_project_id, instances=30, cores=60, ram=200000)
    admin.set_volume_quotas(conn.current_project_id, volumes=30, gigabytes=100)
    flavor = min(conn.compute.flavors(), key=lambda f: f.ram)
    image = admin.image.create_image(name="paging-img", data=b"\0" * 4096, disk_format="raw",
                                     container_format="bare", visibility="public")
    conn.compute.post("/servers", json={"server": {"name": "pg", "imageRef": image.id, "flavorRef": flavor.id,
                                                   "networks": "none", "min_count": 25, "max_count": 25}},
                      microversion="2.37").raise_for_status()
    volumes = [conn.block_storage.create_volume(size=1, name=f"pv{i:02d}") for i in range(23)]
    yield conn.config.name
    for server in conn.compute.servers():
        conn.compute.delete_server(server)
    for v in volumes:
        conn.block_storage.wait_for_status(v, "available", wait=60)
        conn.block_storage.delete_volume(v)
    admin.image.delete_image(image)


def test_instances_are_paged_with_next_and_prev(live: LiveCloud, crowded: str) -> None:
    s = http_login(live, crowded)
    base = live.url("dashboard")
    conn = live.conn(crowded)
    expected = [x["id"] for x in conn.compute.get("/servers?limit=1000", microversion="2.79").json()["servers"]]
    assert len(expected) == 25
    pages, links = _walk(s, base, "/project/instances/")
    assert [len(p) for p in pages] == [20, 5]
    # The API's own order (newest first), every instance once, none of another project's.
    assert pages[0] + pages[1] == expected
    assert "prev" not in links[0] and links[1].keys() == {"prev"}
    back = s.get(base + links[1]["prev"], timeout=30).text
    assert ROW.findall(back) == pages[0]
    assert _links(back).keys() == {"next"}
    # The rows' refresh asks for the same page.
    second = s.get(base + links[0]["next"], timeout=30).text
    poll = re.search(r'data-poll="([^"]+)"', second)
    if poll:
        assert "marker=" in poll.group(1)
    partial = s.get(base + links[0]["next"] + "&partial=1", timeout=30).text
    assert ROW.findall(partial) == pages[1] and "<html" not in partial


def test_volumes_are_paged_and_the_form_offers_every_available_volume(live: LiveCloud, crowded: str) -> None:
    s = http_login(live, crowded)
    base = live.url("dashboard")
    conn = live.conn(crowded)
    for v in conn.block_storage.volumes():
        conn.block_storage.wait_for_status(v, "available", wait=60)
    pages, links = _walk(s, base, "/project/volumes/")
    assert [len(p) for p in pages] == [20, 3]
    assert len(set(pages[0] + pages[1])) == 23
    assert ROW.findall(s.get(base + links[1]["prev"], timeout=30).text) == pages[0]
    # The Create Volume form lists all 23 as sources, not only those of the page.
    form = s.get(base + "/project/volumes/", timeout=30).text.split('name="volume_id"', 1)[1].split("</select>")[0]
    assert form.count("<option") == 23


def test_a_marker_of_another_project_is_an_error_page_not_its_rows(live: LiveCloud, crowded: str) -> None:
    s = http_login(live, "demo")
    other = live.conn(crowded).compute.get("/servers?limit=1", microversion="2.79").json()["servers"][0]["id"]
    r = s.get(f"{live.url('dashboard')}/project/instances/?marker={other}", timeout=30)
    assert r.status_code == 400 and "not found" in r.text and other not in ROW.findall(r.text)
