"""Every page of the dashboard, by panel module."""

from __future__ import annotations

from tinystack.dashboard.views import (
    admin,
    apiaccess,
    auth,
    floatingips,
    identity,
    images,
    instance_detail,
    instances,
    keypairs,
    launch,
    networks,
    overview,
    routers,
    secgroups,
    servergroups,
    topology,
    volumes,
)
from tinystack.dashboard.web import Page

MODULES = [auth, overview, launch, instances, instance_detail, images, keypairs, servergroups, volumes, networks, routers,
           secgroups, floatingips, topology, apiaccess, admin, identity]
PAGES: list[Page] = [page for module in MODULES for page in module.PAGES]
