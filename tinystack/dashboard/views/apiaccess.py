"""Project > API Access: the service endpoints of the user's catalog, and an openrc or clouds.yaml to download.
Neither holds the password: the user types it (openrc asks, clouds.yaml has a line to fill in)."""

from __future__ import annotations

import shlex

import yaml
from aiohttp import web

from tinystack.dashboard.web import REGION, Page, render, session


async def index(request: web.Request) -> web.StreamResponse:
    sess = session(request)
    return render(request, "api_access.html", title="API Access", endpoints=sorted(sess.urls.items()))


async def openrc(request: web.Request) -> web.StreamResponse:
    sess = session(request)
    q = shlex.quote
    lines = ["#!/usr/bin/env bash", "# tinystack openrc for project " + sess.project_name.replace("\n", " "),
             f"export OS_AUTH_URL={q(sess.urls['identity'])}", "export OS_IDENTITY_API_VERSION=3",
             f"export OS_PROJECT_ID={q(sess.project_id)}", f"export OS_PROJECT_NAME={q(sess.project_name)}",
             f"export OS_USER_DOMAIN_NAME={q(sess.domain_name)}", f"export OS_PROJECT_DOMAIN_ID={q('default')}",
             f"export OS_USERNAME={q(sess.user_name)}", 'echo "Please enter your OpenStack Password for project '
             '$OS_PROJECT_NAME as user $OS_USERNAME: "', "read -sr OS_PASSWORD_INPUT",
             'export OS_PASSWORD=$OS_PASSWORD_INPUT', f"export OS_REGION_NAME={q(request.app[REGION])}",
             'export OS_INTERFACE=public', ""]
    return _download("\n".join(lines), f"{sess.project_name}-openrc.sh", "application/x-sh")


async def clouds_yaml(request: web.Request) -> web.StreamResponse:
    sess = session(request)
    doc = {"clouds": {"openstack": {
        "auth": {"auth_url": sess.urls["identity"], "username": sess.user_name, "project_id": sess.project_id,
                 "project_name": sess.project_name, "user_domain_name": sess.domain_name, "password": ""},
        "region_name": request.app[REGION], "interface": "public", "identity_api_version": 3}}}
    return _download(yaml.safe_dump(doc, sort_keys=False), "clouds.yaml", "application/x-yaml")


def _download(text: str, filename: str, content_type: str) -> web.Response:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in filename)
    return web.Response(text=text, content_type=content_type,
                        headers={"Content-Disposition": f'attachment; filename="{safe}"'})


PAGES = [
    Page("GET", "/project/api_access/", index),
    Page("GET", "/project/api_access/openrc/", openrc),
    Page("GET", "/project/api_access/clouds.yaml", clouds_yaml),
]
