"""Every page of the dashboard, by panel module."""

from __future__ import annotations

from tinystack.dashboard.views import (
    admin,
    admin_project,
    apiaccess,
    auth,
    backups,
    containers,
    flavor_access,
    floatingips,
    identity,
    identity_more,
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
           secgroups, floatingips, topology, containers, backups, apiaccess, admin, flavor_access,
           admin_project,
           identity, identity_more]
PAGES: list[Page] = [page for module in MODULES for page in module.PAGES]
