"""tempest.conf generation from a fake cloud: facts in, flags left at Tempest's defaults."""

from __future__ import annotations

import configparser
from pathlib import Path

from tinystack.conformance.cloud import CloudFacts, Credentials
from tinystack.conformance.config import build

ADMIN = Credentials("admin", "s3cr$t", "admin")


def _parse(text: str) -> configparser.ConfigParser:
    # DEFAULT is an ordinary section in oslo.config: do not let configparser merge it into the others
    parser = configparser.ConfigParser(interpolation=None, default_section="-")
    parser.read_string(text)
    return parser


def _facts(**kwargs: object) -> CloudFacts:
    facts = CloudFacts(auth_url="http://127.0.0.5:5000/v3", region="RegionOne", admin=ADMIN)
    for key, value in kwargs.items():
        setattr(facts, key, value)
    return facts


def test_full_cloud(tmp_path: Path) -> None:
    facts = _facts(
        services={
            "identity": "http://h:5000/v3",
            "compute": "http://h:8774/v2.1",
            "image": "http://h:9292",
            "network": "http://h:9696",
            "volumev3": "http://h:8776/v3",
            "object-store": "http://h:8080/v1/AUTH_x",
        },
        microversions={"compute": ("2.1", "2.95"), "volumev3": ("3.0", "3.70")},
        image_id="img-1",
        image_alt_id="img-2",
        image_ssh_user="cirros",
        flavor_id="42",
        flavor_alt_id="84",
        public_network_id="net-pub",
        public_network_name="public",
    )
    conf = build(facts, {"compute", "image"}, tmp_path / "ws", tmp_path / "accounts.yaml")
    ini = _parse(conf.text())
    assert ini["identity"]["uri_v3"] == "http://127.0.0.5:5000/v3"
    assert ini["identity"]["region"] == "RegionOne"
    assert ini["auth"]["use_dynamic_credentials"] == "True"
    assert ini["auth"]["admin_username"] == "admin"
    # oslo.config expands $name: a literal dollar is doubled
    assert ini["auth"]["admin_password"] == "s3cr$$t"
    assert ini["compute"]["image_ref"] == "img-1" and ini["compute"]["flavor_ref_alt"] == "84"
    # the cloud's minimum, but never a ceiling: a test needing a newer microversion must fail, not skip
    assert (ini["compute"]["min_microversion"], ini["compute"]["max_microversion"]) == ("2.1", "latest")
    assert ini["volume"]["catalog_type"] == "volumev3"
    assert (ini["volume"]["min_microversion"], ini["volume"]["max_microversion"]) == ("3.0", "latest")
    assert ini["placement"]["max_microversion"] == "latest"
    assert ini["network"]["public_network_id"] == "net-pub"
    assert ini["validation"]["image_ssh_user"] == "cirros"
    available = ini["service_available"]
    assert all(available[f] == "True" for f in ("nova", "glance", "neutron", "cinder", "swift"))
    assert available["horizon"] == "False"
    assert conf.forced_available == [] and conf.accounts_yaml is None
    assert ini["DEFAULT"]["log_dir"] == str(tmp_path / "ws" / "logs")


def test_no_feature_flags_are_switched_off(tmp_path: Path) -> None:
    ini = _parse(build(_facts(), {"identity"}, tmp_path, tmp_path / "a.yaml").text())
    # only the defaults that would skip required tests are changed, and only towards running them
    assert dict(ini["compute-feature-enabled"]) == {"resize": "True"}
    assert dict(ini["image-feature-enabled"]) == {"image_format_enforcement": "False"}
    assert [s for s in ini.sections() if s.endswith("feature-enabled")] == [
        "compute-feature-enabled",
        "image-feature-enabled",
    ]
    assert not ini.has_option("validation", "run_validation")


def test_required_service_missing_from_catalog_is_forced_available(tmp_path: Path) -> None:
    facts = _facts(services={"identity": "http://h:5000/v3"})
    conf = build(facts, {"identity", "image", "object_storage"}, tmp_path, tmp_path / "a.yaml")
    available = _parse(conf.text())["service_available"]
    assert available["glance"] == "True" and available["swift"] == "True"
    assert available["nova"] == "False"  # not in the catalog and not asked for
    assert sorted(conf.forced_available) == ["glance", "swift"]


def test_without_admin_uses_preprovisioned_demo_and_alt(tmp_path: Path) -> None:
    facts = _facts(
        admin=None,
        demo=Credentials("demo", "pw", "demo", roles=("member", "reader")),
        alt=Credentials("alt_demo", "it's", "alt_demo", roles=("member",)),
        fixed_network_name="private",
    )
    conf = build(facts, {"compute"}, tmp_path, tmp_path / "accounts.yaml")
    ini = _parse(conf.text())
    assert ini["auth"]["use_dynamic_credentials"] == "False"
    assert ini["auth"]["test_accounts_file"] == str(tmp_path / "accounts.yaml")
    assert ini["compute"]["fixed_network_name"] == "private"
    assert conf.accounts_yaml is not None
    import yaml

    accounts = yaml.safe_load(conf.accounts_yaml)
    assert accounts[0] == {
        "username": "demo",
        "password": "pw",
        "project_name": "demo",
        "user_domain_name": "Default",
        "project_domain_name": "Default",
        "roles": ["member", "reader"],
    }
    assert accounts[1]["password"] == "it's"


def test_overrides_are_applied_and_recorded(tmp_path: Path) -> None:
    conf = build(
        _facts(), set(), tmp_path, tmp_path / "a.yaml", {"validation.run_validation": "False", "compute.flavor_ref": "7"}
    )
    ini = _parse(conf.text())
    assert ini["validation"]["run_validation"] == "False"
    assert ini["compute"]["flavor_ref"] == "7"
    assert conf.overrides == {"validation.run_validation": "False", "compute.flavor_ref": "7"}
