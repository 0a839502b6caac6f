"""First-start bootstrap, following DevStack: the Default domain, admin/member/reader roles, the admin,
demo and service projects, their users, the region and a catalog entry for every running service.

Running it again changes nothing except catalog URLs (ports may differ between runs)."""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from tinystack.core.db import new_id
from tinystack.identity.models import Assignment, Domain, Endpoint, ImpliedRole, Project, Region, Role, Service, User
from tinystack.identity.passwords import hash_secret
from tinystack.identity.roles import SYSTEM

DEFAULT_DOMAIN = "default"
ROLES = ("admin", "member", "reader", "service")
IMPLIES = (("admin", "member"), ("member", "reader"))
PROJECTS = ("admin", "demo", "alt_demo", "service")
# user -> (project, role); admin also holds the admin role on the whole system, as DevStack sets up.
USERS = {"admin": ("admin", "admin"), "demo": ("demo", "member"), "alt_demo": ("alt_demo", "member"),
         "nova": ("service", "service")}
# The service user agents authenticate as (docs/contracts.md); it also gets admin on its project.
SERVICE_USER = "nova"
INTERFACES = ("public", "internal", "admin")


@dataclass(frozen=True)
class CatalogEntry:
    type: str
    name: str
    url: str
    description: str = ""


def run(s: Session, region: str, passwords: dict[str, str], catalog: list[CatalogEntry], rounds: int) -> dict[str, str]:
    """Create what is missing. ``passwords`` are the known passwords (from clouds.yaml); users whose password
    is not known get a new one. Returns every bootstrap user's password."""
    if s.get(Domain, DEFAULT_DOMAIN) is None:
        s.add(Domain(id=DEFAULT_DOMAIN, name="Default", description="The default domain", enabled=True))
    role_ids = {}
    for name in ROLES:
        role = s.scalar(select(Role).where(Role.name == name, Role.domain_id == ""))
        if role is None:
            role = Role(id=new_id(), name=name, domain_id="")
            s.add(role)
        role_ids[name] = role.id
    s.flush()
    for prior, implied in IMPLIES:
        if s.get(ImpliedRole, (role_ids[prior], role_ids[implied])) is None:
            s.add(ImpliedRole(prior_role_id=role_ids[prior], implied_role_id=role_ids[implied]))
    project_ids = {}
    for name in PROJECTS:
        project = s.scalar(select(Project).where(Project.name == name, Project.domain_id == DEFAULT_DOMAIN))
        if project is None:
            project = Project(id=new_id(), name=name, domain_id=DEFAULT_DOMAIN, description=f"Bootstrap project {name}")
            s.add(project)
        project_ids[name] = project.id
    s.flush()
    users = {name: s.scalar(select(User).where(User.name == name, User.domain_id == DEFAULT_DOMAIN)) for name in USERS}
    out = {name: passwords.get(name) or secrets.token_urlsafe(18) for name in USERS}
    stale = [name for name, user in users.items()
             if name not in passwords or user is None or user.password_hash is None]
    # bcrypt is slow on purpose and releases the GIL: hash the bootstrap passwords side by side.
    with ThreadPoolExecutor(max_workers=len(USERS)) as pool:
        hashes = dict(zip(stale, pool.map(lambda n: hash_secret(out[n], rounds), stale), strict=True))
    for name, (project_name, role_name) in USERS.items():
        user = users[name]
        if user is None:
            user = User(id=new_id(), name=name, domain_id=DEFAULT_DOMAIN, default_project_id=project_ids[project_name])
            s.add(user)
        if name in hashes:
            user.password_hash = hashes[name]
        s.flush()
        _grant(s, "UserProject", user.id, project_ids[project_name], role_ids[role_name])
        if name == "admin":
            _grant(s, "UserSystem", user.id, SYSTEM, role_ids["admin"])
        if name == SERVICE_USER:
            _grant(s, "UserProject", user.id, project_ids[project_name], role_ids["admin"])
    if s.get(Region, region) is None:
        s.add(Region(id=region, description=""))
    for entry in catalog:
        _catalog_entry(s, region, entry)
    return out


def _grant(s: Session, kind: str, actor: str, target: str, role_id: str) -> None:
    if s.get(Assignment, (kind, actor, target, role_id, False)) is None:
        s.add(Assignment(type=kind, actor_id=actor, target_id=target, role_id=role_id, inherited=False))


def _catalog_entry(s: Session, region: str, entry: CatalogEntry) -> None:
    service = s.scalar(select(Service).where(Service.type == entry.type))
    if service is None:
        service = Service(id=new_id(), type=entry.type, name=entry.name, description=entry.description)
        s.add(service)
        s.flush()
    for interface in INTERFACES:
        ep = s.scalar(select(Endpoint).where(Endpoint.service_id == service.id, Endpoint.interface == interface,
                                             Endpoint.region_id == region))
        if ep is None:
            s.add(Endpoint(id=new_id(), service_id=service.id, region_id=region, interface=interface, url=entry.url))
        elif ep.url != entry.url:
            ep.url = entry.url
