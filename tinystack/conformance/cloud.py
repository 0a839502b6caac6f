"""What a live cloud really offers, read through openstacksdk from a clouds.yaml: credentials, the
service catalog, microversion ranges, and the image, flavors and public network tests should use."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from tinystack.conformance.errors import HarnessError

T = TypeVar("T")
ADMIN_CLOUD = "admin"
DEMO_CLOUD = "demo"
ALT_CLOUDS = ("alt_demo", "demo_alt", "alt-demo", "demo-alt", "alt")
MICROVERSIONED = ("compute", "block-storage", "volumev3", "placement")


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str
    project_name: str
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"
    # role names on the project, read from a token; pre-provisioned accounts must list them
    roles: tuple[str, ...] = ()


@dataclass
class CloudFacts:
    """Everything tempest.conf is generated from; filled by :func:`discover`, or by hand in tests."""

    auth_url: str
    region: str = ""
    admin: Credentials | None = None
    demo: Credentials | None = None
    alt: Credentials | None = None
    verify: bool = True
    cacert: str | None = None
    # service type -> public URL, for the services in the catalog
    services: dict[str, str] = field(default_factory=dict)
    # service type -> (min, max) microversion
    microversions: dict[str, tuple[str, str]] = field(default_factory=dict)
    image_id: str | None = None
    image_alt_id: str | None = None
    image_ssh_user: str | None = None
    flavor_id: str | None = None
    flavor_alt_id: str | None = None
    public_network_id: str | None = None
    public_network_name: str | None = None
    fixed_network_name: str | None = None
    warnings: list[str] = field(default_factory=list)
    # What the harness itself made in the cloud so that tests have the data they need (named in summary.md).
    created: list[str] = field(default_factory=list)


def discover(clouds_yaml: Path) -> CloudFacts:
    """Read credentials from ``clouds_yaml`` and probe the cloud; a probe that fails becomes a warning, so
    a half-broken cloud still gets a config and its breakage shows up as test failures."""
    import openstack.config

    if not clouds_yaml.is_file():
        raise HarnessError(f"no clouds.yaml at {clouds_yaml}")
    config = openstack.config.OpenStackConfig(config_files=[str(clouds_yaml)], load_envvars=False)
    # Only the clouds used here are loaded: others in an operator's file may need plugins we lack.
    wanted = (ADMIN_CLOUD, DEMO_CLOUD, *ALT_CLOUDS)
    regions = {name: config.get_one(cloud=name) for name in config.get_cloud_names() if name in wanted}
    main = regions.get(ADMIN_CLOUD) or regions.get(DEMO_CLOUD)
    if main is None:
        raise HarnessError(f"{clouds_yaml} has neither an '{ADMIN_CLOUD}' nor a '{DEMO_CLOUD}' cloud")
    auth = main.config.get("auth", {})
    facts = CloudFacts(
        auth_url=identity_v3_url(str(auth.get("auth_url", ""))),
        region=main.region_name or "",
        admin=_credentials(regions.get(ADMIN_CLOUD)),
        demo=_credentials(regions.get(DEMO_CLOUD)),
        alt=next((_credentials(regions[n]) for n in ALT_CLOUDS if n in regions), None),
        verify=bool(main.config.get("verify", True)),
        cacert=main.config.get("cacert"),
    )
    _probe(facts, main)
    if facts.admin is None:
        facts.demo = _with_roles(facts, regions.get(DEMO_CLOUD), facts.demo)
        alt_name = next((n for n in ALT_CLOUDS if n in regions), None)
        facts.alt = _with_roles(facts, regions.get(alt_name or ""), facts.alt)
    return facts


def _with_roles(facts: CloudFacts, region: Any, creds: Credentials | None) -> Credentials | None:
    if region is None or creds is None:
        return creds

    def token_roles() -> tuple[str, ...]:
        session = region.get_session()
        return tuple(session.auth.get_access(session).role_names)

    roles = _attempt(facts, f"roles of {creds.username}", token_roles)
    return replace(creds, roles=roles or ("member",))


def identity_v3_url(auth_url: str) -> str:
    url = auth_url.rstrip("/")
    return url if url.endswith("/v3") else url + "/v3"


def _credentials(region: Any) -> Credentials | None:
    if region is None:
        return None
    auth = region.config.get("auth", {})
    if not auth.get("username") or not auth.get("password"):
        return None
    domain = auth.get("domain_name") or "Default"
    return Credentials(
        username=auth["username"],
        password=auth["password"],
        project_name=auth.get("project_name", ""),
        user_domain_name=auth.get("user_domain_name") or domain,
        project_domain_name=auth.get("project_domain_name") or domain,
    )


def _attempt(facts: CloudFacts, what: str, probe: Callable[[], T]) -> T | None:
    try:
        return probe()
    except Exception as exc:  # any failure of the cloud is a finding, not a harness error
        facts.warnings.append(f"{what}: {type(exc).__name__}: {exc}".splitlines()[0][:300])
        return None


def _probe(facts: CloudFacts, region: Any) -> None:
    import openstack.connection

    conn = openstack.connection.Connection(config=region)
    session: Any = conn.session
    catalog = _attempt(facts, "reading the service catalog", lambda: session.auth.get_access(session).service_catalog)
    if catalog is None:
        return
    facts.services = public_endpoints(catalog.catalog, facts.region)
    if not facts.region:
        facts.region = catalog_region(catalog.catalog, "identity")
    for service_type in MICROVERSIONED:
        # volumev3 is the old name of block-storage; keystoneauth refuses version discovery through it.
        if service_type == "volumev3" and "block-storage" in facts.microversions:
            continue
        if service_type in facts.services:
            rng = _attempt(facts, f"{service_type} versions", partial(_microversions, session, service_type, facts))
            if rng:
                facts.microversions[service_type] = rng
    if "image" in facts.services:
        _attempt(facts, "listing images", lambda: _pick_images(conn, facts))
        _attempt(facts, "copying the image for image_ref_alt", lambda: ensure_alt_image(conn, facts))
    if "compute" in facts.services:
        _attempt(facts, "listing flavors", lambda: _pick_flavors(conn, facts))
    if "network" in facts.services:
        _attempt(facts, "listing networks", lambda: _pick_networks(conn, facts))


def public_endpoints(catalog: list[dict[str, Any]], region: str) -> dict[str, str]:
    """service type -> public URL, preferring ``region`` when a service has endpoints in several."""
    found: dict[str, str] = {}
    for service in catalog:
        endpoints = [e for e in service.get("endpoints", []) if e.get("interface", "public") == "public"]
        in_region = [e for e in endpoints if region and region in (e.get("region"), e.get("region_id"))]
        chosen = (in_region or endpoints or [None])[0]
        if chosen is not None and service.get("type"):
            found[service["type"]] = chosen["url"]
    return found


def catalog_region(catalog: list[dict[str, Any]], service_type: str) -> str:
    for service in catalog:
        if service.get("type") == service_type:
            for endpoint in service.get("endpoints", []):
                if endpoint.get("region") or endpoint.get("region_id"):
                    return str(endpoint.get("region") or endpoint.get("region_id"))
    return ""


def _microversions(session: Any, service_type: str, facts: CloudFacts) -> tuple[str, str] | None:
    data = session.get_endpoint_data(
        service_type=service_type,
        interface="public",
        region_name=facts.region or None,
        min_version="1",
        max_version="latest",
    )
    if data is None or data.max_microversion is None:
        return None
    low = data.min_microversion or data.max_microversion
    return _version_text(low), _version_text(data.max_microversion)


def _version_text(version: Any) -> str:
    if isinstance(version, tuple):
        return ".".join(str(part) for part in version)
    return str(version)


ALT_SUFFIX = "-alt"


def ensure_alt_image(conn: Any, facts: CloudFacts) -> None:
    """Give ``image_ref_alt`` an image of its own when the cloud has a single bootable public image.

    Tempest's image filters (``ListServerFiltersTestJSON``) need two distinct images and skip otherwise;
    python-tempestconf's ``--create`` makes such resources too. The copy is public, reused by later runs,
    and named in ``summary.md``. Needs admin: only admins may publish images.
    """
    if facts.admin is None or facts.image_id is None or facts.image_alt_id != facts.image_id:
        return
    source = conn.image.get_image(facts.image_id)
    name = f"{source.name}{ALT_SUFFIX}"
    existing = [i for i in conn.image.images(name=name) if i.status == "active"]
    if existing:
        facts.image_alt_id = existing[0].id
        return
    # An AMI boots only with its kernel and ramdisk (openstacksdk has them as attributes, not properties).
    props = {k: getattr(source, k, None) or (source.properties or {}).get(k)
             for k in ("kernel_id", "ramdisk_id", "os_admin_user")}
    props = {k: v for k, v in props.items() if v}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "image"
        conn.image.download_image(source, output=str(path))
        copy = conn.image.create_image(name=name, filename=str(path), disk_format=source.disk_format,
                                       container_format=source.container_format, visibility="public",
                                       min_disk=source.min_disk or 0, min_ram=source.min_ram or 0,
                                       wait=True, validate_checksum=False, **props)
    facts.image_alt_id = copy.id
    facts.created.append(f"image {name} ({copy.id}), a copy of {source.name}, as image_ref_alt")


def _pick_images(conn: Any, facts: CloudFacts) -> None:
    # Kernel (aki) and ramdisk (ari) images cannot boot on their own: a server built from one never comes up.
    images = [i for i in conn.image.images() if i.status == "active" and i.visibility in ("public", "community")
              and i.disk_format not in ("aki", "ari")]
    # Prefer what DevStack would register (a CirrOS guest), then the smallest.
    images.sort(key=lambda i: ("cirros" not in (i.name or "").lower(), i.size or 0, i.name or ""))
    if images:
        facts.image_id = images[0].id
        facts.image_alt_id = (images[1] if len(images) > 1 else images[0]).id
        props = images[0].properties or {}
        facts.image_ssh_user = props.get("os_admin_user") or ("cirros" if "cirros" in (images[0].name or "") else None)


def _pick_flavors(conn: Any, facts: CloudFacts) -> None:
    flavors = [f for f in conn.compute.flavors(is_public=True) if not f.is_disabled]
    flavors.sort(key=lambda f: (f.ram, f.vcpus, f.disk, f.name))
    # A guest needs some memory; the tiniest flavors of some clouds (m1.nano 64 MiB) still boot CirrOS.
    usable = [f for f in flavors if f.ram >= 64] or flavors
    if usable:
        facts.flavor_id = usable[0].id
        facts.flavor_alt_id = (usable[1] if len(usable) > 1 else usable[0]).id


def _pick_networks(conn: Any, facts: CloudFacts) -> None:
    networks = list(conn.network.networks())
    external = sorted((n for n in networks if n.is_router_external), key=lambda n: (n.name != "public", n.name))
    if external:
        facts.public_network_id = external[0].id
        facts.public_network_name = external[0].name
    shared = sorted((n for n in networks if n.is_shared and not n.is_router_external), key=lambda n: n.name)
    private = [n for n in networks if n.name == "private"]
    if private or shared:
        facts.fixed_network_name = (private or shared)[0].name
