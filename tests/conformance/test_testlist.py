"""Test lists: the guideline's format, subsets, and matching ids against a Tempest listing."""

from __future__ import annotations

from pathlib import Path

from tinystack.conformance import testlist

REQUIRED = """\
# OpenStack Powered Platform, interop guideline 2020.06: required Tempest tests
identity\tidentity-v3-tokens-create\ttempest.api.identity.v3.test_tokens.TokensV3Test.test_create_token\tid-6f8e4436-fc96-4282-8122-e41df57197a9
identity\tidentity-v3-tokens-create\ttempest.api.identity.v3.test_tokens.TokensV3Test.test_create_token\tid-6f8e4436-fc96-4282-8122-e41df57197a9
{projects}
image\timages-v2-get\ttempest.api.image.v2.test_images.ListUserImagesTest.test_get_image_schema\tid-622b925c-479f-4736-860d-adeaf13bc371
compute\tcompute-gone\ttempest.api.compute.test_gone.GoneTest.test_gone\tid-00000000-0000-4000-8000-000000000000\tflagged
"""
PROJECTS = (
    "identity\tidentity-v3-list-projects\ttempest.api.identity.v3.test_projects.IdentityV3ProjectsTest."
    "test_list_projects_returns_only_authorized_projects\tid-86128d46-e170-4644-866a-cc487f699e1d flagged"
)
REQUIRED = REQUIRED.format(projects=PROJECTS)

# What `tempest run --list-tests` prints: a log line, then ids with their attributes in brackets.
LISTING = """\
2026-11-21 14:51:23.893 6571 INFO tempest [-] Using tempest config file /etc/tempest/tempest.conf
tempest.api.identity.v3.test_tokens.TokensV3Test.test_create_token[id-6f8e4436-fc96-4282-8122-e41df57197a9]
tempest.api.identity.v3.test_projects_moved.IdentityV3ProjectsTest.test_list_projects_returns_only_authorized_projects[id-86128d46-e170-4644-866a-cc487f699e1d]
tempest.api.image.v2.test_images.ListUserImagesTest.test_get_image_schema[id-622b925c-479f-4736-860d-adeaf13bc371,smoke]
tempest.api.network.test_versions.NetworksApiDiscovery.test_api_version_resources[id-cac8a836-c2e0-4304-b556-cd299c7281d1,smoke]

"""


def test_parses_guideline_lines_flags_and_drops_repeats() -> None:
    tests = testlist.parse_tests(REQUIRED.splitlines())
    assert [t.service for t in tests] == ["identity", "identity", "image", "compute"]
    first = tests[0]
    assert first.capability == "identity-v3-tokens-create"
    assert first.name == "tempest.api.identity.v3.test_tokens.TokensV3Test.test_create_token"
    assert first.idempotent_id == "id-6f8e4436-fc96-4282-8122-e41df57197a9"
    assert not first.flagged
    # "flagged" follows the id after a space in the guideline file, after a tab in others
    assert tests[1].flagged and tests[3].flagged


def test_parses_plain_names_and_bare_ids() -> None:
    named = testlist.parse_line(
        "tempest.api.image.v2.test_images.ListUserImagesTest.test_x[id-622b925c-479f-4736-860d-adeaf13bc371,smoke]"
    )
    assert named is not None
    assert (named.service, named.name) == ("image", "tempest.api.image.v2.test_images.ListUserImagesTest.test_x")
    assert named.idempotent_id == "id-622b925c-479f-4736-860d-adeaf13bc371"
    bare = testlist.parse_line("id-622B925C-479F-4736-860D-ADEAF13BC371  # a comment")
    assert bare is not None and bare.idempotent_id == "id-622b925c-479f-4736-860d-adeaf13bc371"
    assert testlist.parse_line("# comment") is None and testlist.parse_line("   ") is None


def test_listing_drops_log_lines() -> None:
    listing = testlist.parse_listing(LISTING.splitlines())
    assert len(listing) == 4
    assert all(name.startswith("tempest.api.") for name in listing)


def test_resolves_by_id_even_when_the_test_moved() -> None:
    tests = testlist.parse_tests(REQUIRED.splitlines())
    resolution = testlist.resolve(tests, testlist.parse_listing(LISTING.splitlines()))
    names = {t.idempotent_id: listed for t, listed in resolution.selected.items()}
    assert names["id-86128d46-e170-4644-866a-cc487f699e1d"].startswith(
        "tempest.api.identity.v3.test_projects_moved.IdentityV3ProjectsTest."
    )
    assert names["id-622b925c-479f-4736-860d-adeaf13bc371"].endswith("[id-622b925c-479f-4736-860d-adeaf13bc371,smoke]")
    assert [t.idempotent_id for t in resolution.not_found] == ["id-00000000-0000-4000-8000-000000000000"]
    assert len(resolution.load_list()) == 3


def test_a_subclass_sharing_the_id_does_not_stand_in_for_the_listed_test() -> None:
    required = ("compute\tcap\ttempest.api.compute.servers.test_create_server.ServersTestJSON.test_host_name"
                "\tid-ac1ad47f-984b-4441-9274-c9079b7a0666")
    listing = [
        "tempest.api.compute.servers.test_create_server.ServersTestBootFromVolume.test_host_name"
        "[id-ac1ad47f-984b-4441-9274-c9079b7a0666,volume]",
        "tempest.api.compute.servers.test_create_server.ServersTestJSON.test_host_name"
        "[id-ac1ad47f-984b-4441-9274-c9079b7a0666]",
    ]
    resolution = testlist.resolve(testlist.parse_tests([required]), testlist.parse_listing(listing))
    assert list(resolution.selected.values()) == [listing[1]]


def test_bare_ids_take_service_and_name_from_the_listing() -> None:
    tests = [testlist.RequiredTest("unknown", "", "", "id-cac8a836-c2e0-4304-b556-cd299c7281d1")]
    resolution = testlist.resolve(tests, testlist.parse_listing(LISTING.splitlines()))
    (test,) = resolution.selected
    assert test.service == "network"
    assert test.name == "tempest.api.network.test_versions.NetworksApiDiscovery.test_api_version_resources"


def test_subset_keeps_the_lists_entries() -> None:
    tests = testlist.parse_tests(REQUIRED.splitlines())
    subset = testlist.parse_tests(["id-622b925c-479f-4736-860d-adeaf13bc371\tsome.old.name"])
    (picked,) = testlist.apply_subset(tests, subset)
    assert picked.service == "image" and picked.capability == "images-v2-get"


def test_ci_subset_is_drawn_from_the_required_list() -> None:
    ci = testlist.read_tests(testlist.subset_path("ci"))
    services = {testlist.service_of(line.split("\t")[1]) for line in _data_lines(testlist.subset_path("ci"))}
    assert services == {"identity", "image", "object_storage"}
    assert len(ci) == 68
    required = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "required-tests.txt"
    if required.is_file():
        ids = {t.idempotent_id for t in testlist.read_tests(required)}
        assert {t.idempotent_id for t in ci} <= ids


def _data_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
