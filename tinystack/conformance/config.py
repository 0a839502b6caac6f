"""Generate tempest.conf (and accounts.yaml when there is no admin) from the facts about a live cloud.

Facts are written (endpoints, ids, credentials) and feature flags keep Tempest's defaults, except the
few defaults that skip interop-required tests: those are set so the tests run, and a cloud lacking the
feature fails them. Likewise each microversion range ends at ``latest``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tinystack.conformance.cloud import CloudFacts, Credentials

# [service_available] flag -> catalog types that provide it
CATALOG_TYPES: dict[str, tuple[str, ...]] = {
    "nova": ("compute",),
    "glance": ("image",),
    "neutron": ("network",),
    "cinder": ("block-storage", "volumev3", "volume"),
    "swift": ("object-store",),
    "horizon": ("dashboard",),
}
# Tempest defaults that would skip required tests (found by importing each required test with the generated
# config): resize is off by default; format enforcement makes ListUserImagesTest skip its set-up.
RUN_REQUIRED_TESTS: dict[str, dict[str, str]] = {
    "compute-feature-enabled": {"resize": "True"},
    "image-feature-enabled": {"image_format_enforcement": "False"},
}
# interop guideline service -> [service_available] flag
GUIDELINE_FLAGS = {
    "compute": "nova",
    "image": "glance",
    "network": "neutron",
    "volume": "cinder",
    "object_storage": "swift",
}


@dataclass
class TempestConfig:
    sections: dict[str, dict[str, str]]
    # flags set true although the catalog lacks the service: the test list requires it, so its tests must fail
    forced_available: list[str] = field(default_factory=list)
    accounts_yaml: str | None = None
    overrides: dict[str, str] = field(default_factory=dict)

    def text(self) -> str:
        return render_ini(self.sections)


def build(
    facts: CloudFacts,
    required_services: Iterable[str],
    workspace: Path,
    accounts_file: Path,
    overrides: dict[str, str] | None = None,
) -> TempestConfig:
    """Build the sections of tempest.conf. ``overrides`` maps ``section.option`` to a value, applied last."""
    sections: dict[str, dict[str, str]] = {
        "DEFAULT": {"log_dir": str(workspace / "logs"), "log_file": "tempest.log"},
        "oslo_concurrency": {"lock_path": str(workspace / "tempest_lock")},
    }
    conf = TempestConfig(sections)
    _identity(sections, facts)
    conf.accounts_yaml = _auth(sections, facts, accounts_file)
    _compute(sections, facts)
    _network(sections, facts)
    _volume(sections, facts)
    sections["placement"] = microversion_range(facts, "placement")
    conf.forced_available = _service_available(sections, facts, required_services)
    for section, options in RUN_REQUIRED_TESTS.items():
        sections.setdefault(section, {}).update(options)
    for key, value in (overrides or {}).items():
        section, _, option = key.rpartition(".")
        sections.setdefault(section or "DEFAULT", {})[option] = value
        conf.overrides[key] = value
    return conf


def _identity(sections: dict[str, dict[str, str]], facts: CloudFacts) -> None:
    identity = {"uri_v3": facts.auth_url, "v3_endpoint_type": "public"}
    if facts.region:
        identity["region"] = facts.region
    if not facts.verify:
        identity["disable_ssl_certificate_validation"] = "True"
    if facts.cacert:
        identity["ca_certificates_file"] = facts.cacert
    sections["identity"] = identity


def _auth(sections: dict[str, dict[str, str]], facts: CloudFacts, accounts_file: Path) -> str | None:
    admin = facts.admin
    if admin is not None:
        sections["auth"] = {
            "use_dynamic_credentials": "True",
            "admin_username": admin.username,
            "admin_password": admin.password,
            "admin_project_name": admin.project_name,
            "admin_domain_name": admin.user_domain_name,
            "admin_user_domain_name": admin.user_domain_name,
            "admin_project_domain_name": admin.project_domain_name,
            "default_credentials_domain_name": admin.user_domain_name,
        }
        return None
    # Without admin, Tempest can only use pre-provisioned users: the demo and alt users.
    users = [c for c in (facts.demo, facts.alt) if c is not None]
    sections["auth"] = {"use_dynamic_credentials": "False", "test_accounts_file": str(accounts_file)}
    return accounts_yaml(users)


def accounts_yaml(users: list[Credentials]) -> str:
    lines: list[str] = []
    for user in users:
        lines += [
            f"- username: {_yaml_str(user.username)}",
            f"  password: {_yaml_str(user.password)}",
            f"  project_name: {_yaml_str(user.project_name)}",
            f"  user_domain_name: {_yaml_str(user.user_domain_name)}",
            f"  project_domain_name: {_yaml_str(user.project_domain_name)}",
        ]
        if user.roles:
            lines.append("  roles:")
            lines += [f"    - {_yaml_str(role)}" for role in user.roles]
    return "\n".join(lines) + "\n" if lines else "[]\n"


def _yaml_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _compute(sections: dict[str, dict[str, str]], facts: CloudFacts) -> None:
    compute: dict[str, str] = {}
    for option, value in (
        ("image_ref", facts.image_id),
        ("image_ref_alt", facts.image_alt_id),
        ("flavor_ref", facts.flavor_id),
        ("flavor_ref_alt", facts.flavor_alt_id),
    ):
        if value:
            compute[option] = value
    if facts.admin is None and facts.fixed_network_name:
        # Pre-provisioned users cannot get isolated networks; they boot on the shared one.
        compute["fixed_network_name"] = facts.fixed_network_name
    compute.update(microversion_range(facts, "compute"))
    sections["compute"] = compute
    validation: dict[str, str] = {}
    if facts.image_ssh_user:
        validation["image_ssh_user"] = facts.image_ssh_user
        validation["image_alt_ssh_user"] = facts.image_ssh_user
    if facts.public_network_name:
        validation["network_for_ssh"] = facts.public_network_name
    if validation:
        sections["validation"] = validation


def _network(sections: dict[str, dict[str, str]], facts: CloudFacts) -> None:
    network: dict[str, str] = {}
    if facts.public_network_id:
        network["public_network_id"] = facts.public_network_id
    if facts.public_network_name:
        network["floating_network_name"] = facts.public_network_name
    if network:
        sections["network"] = network


def _volume(sections: dict[str, dict[str, str]], facts: CloudFacts) -> None:
    volume: dict[str, str] = {}
    catalog_type = next((t for t in CATALOG_TYPES["cinder"] if t in facts.services), None)
    if catalog_type:
        volume["catalog_type"] = catalog_type
    volume.update(microversion_range(facts, catalog_type or "block-storage"))
    sections["volume"] = volume


def microversion_range(facts: CloudFacts, service_type: str) -> dict[str, str]:
    """Start at the cloud's minimum (its default when unknown); never stop short of ``latest``."""
    low = facts.microversions[service_type][0] if service_type in facts.microversions else None
    return {"min_microversion": low, "max_microversion": "latest"} if low else {"max_microversion": "latest"}


def _service_available(sections: dict[str, dict[str, str]], facts: CloudFacts, required_services: Iterable[str]) -> list[str]:
    required = {GUIDELINE_FLAGS[s] for s in required_services if s in GUIDELINE_FLAGS}
    available: dict[str, str] = {}
    forced: list[str] = []
    for flag, types in CATALOG_TYPES.items():
        present = any(t in facts.services for t in types)
        available[flag] = str(present or flag in required)
        if flag in required and not present:
            forced.append(flag)
    sections["service_available"] = available
    return forced


def render_ini(sections: dict[str, dict[str, str]]) -> str:
    out: list[str] = []
    for section, options in sections.items():
        if not options:
            continue
        out.append(f"[{section}]")
        out += [f"{option} = {_escape(value)}" for option, value in options.items()]
        out.append("")
    return "\n".join(out)


def _escape(value: str) -> str:
    # oslo.config expands $name; a literal dollar (say, in a password) must be doubled.
    return value.replace("$", "$$")
