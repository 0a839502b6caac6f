"""Failure causes: the same breakage on different ids and names must land in one group."""

from __future__ import annotations

from tinystack.conformance import causes

REFUSED = """\
Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/urllib3/connection.py", line 198, in _new_conn
    sock = connection.create_connection(
ConnectionRefusedError: [Errno 111] Connection refused

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/tempest/lib/services/image/v2/images_client.py", line 80, in show_image
    resp, body = self.get(url)
  File "/venv/lib/python3.11/site-packages/tempest/lib/common/rest_client.py", line 314, in get
    return self.request('GET', url, extra_headers, headers)
urllib3.exceptions.MaxRetryError: HTTPConnectionPool(host='127.0.0.5', port=9292): Max retries exceeded with url: \
/v2/images/{uuid} (Caused by NewConnectionError("HTTPConnection(host='127.0.0.5', port=9292): Failed to establish \
a new connection: [Errno 111] Connection refused"))
"""

NOT_FOUND = """\
Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/tempest/api/image/v2/test_images.py", line 99, in test_x
    self.client.show_image(image_id)
  File "/venv/lib/python3.11/site-packages/tempest/lib/services/image/v2/images_client.py", line 80, in show_image
    resp, body = self.get(url)
  File "/venv/lib/python3.11/site-packages/tempest/lib/common/rest_client.py", line 900, in _error_checker
    raise exceptions.NotFound(resp_body, resp=resp)
tempest.lib.exceptions.NotFound: Object not found
Details: {'itemNotFound': {'message': 'Image {uuid} could not be found.', 'code': 404}}
"""

MISMATCH = """\
Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/tempest/api/identity/v3/test_api_discovery.py", line 40, in test_x
    self.assertEqual('application/json', media_type)
  File "/venv/lib/python3.11/site-packages/testtools/testcase.py", line 419, in assertEqual
    self.assertThat(observed, matcher, message)
testtools.matchers._impl.MismatchError: 'application/json' != 'text/plain'
"""

CREDENTIALS = """\
Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/tempest/lib/common/cred_client.py", line 161, in __init__
    raise lib_exc.InvalidCredentials(msg)
tempest.lib.exceptions.InvalidCredentials: Invalid Credentials
Details: Requested domain Default could not be found
"""


def _uuid(n: int) -> str:
    return f"{n:08x}-1111-4222-8333-444455556666"


def test_connection_refused_names_the_endpoint_and_groups_across_ids() -> None:
    one = causes.classify(REFUSED.replace("{uuid}", _uuid(1)))
    two = causes.classify(REFUSED.replace("{uuid}", _uuid(2)))
    assert one == two
    assert one.kind == "connection"
    assert one.title == "cannot connect to 127.0.0.5:9292"


def test_http_error_names_status_call_and_path() -> None:
    requests = ["200 GET http://h:9292/v2/images", f"404 GET http://h:9292/v2/images/{_uuid(3)}?member_status=all"]
    cause = causes.classify(NOT_FOUND.replace("{uuid}", _uuid(3)), requests)
    assert cause.kind == "http"
    assert cause.title == (
        "HTTP 404 NotFound in images_client.show_image GET /v2/images/{id}?member_status: Image {id} could not be found."
    )


def test_assertion_keeps_its_message() -> None:
    cause = causes.classify(MISMATCH)
    assert cause.kind == "assertion"
    assert cause.title == "MismatchError: 'application/json' != 'text/plain'"


def test_tempest_details_and_the_failing_request_explain_errors() -> None:
    cause = causes.classify(
        CREDENTIALS, ["201 POST http://h:5000/v3/auth/tokens", "404 GET http://h:5000/v3/domains?name=Default"]
    )
    assert cause.kind == "error"
    assert cause.title == (
        "InvalidCredentials: Invalid Credentials: Requested domain Default could not be found (after 404 GET /v3/domains?name)"
    )


def test_endpoint_not_in_catalog() -> None:
    text = (
        'Traceback (most recent call last):\n  File "x.py", line 1, in f\n'
        "tempest.lib.exceptions.EndpointNotFound: Endpoint not found\nDetails: image\n"
    )
    cause = causes.classify(text)
    assert (cause.kind, cause.title) == ("catalog", "endpoint not in the service catalog: image")


def test_masking_and_paths() -> None:
    assert causes.mask(f"server {_uuid(9)} named tempest-ServersTest-1234567 x") == "server {id} named {name} x"
    assert causes.path_pattern("http://h:8080/v1/AUTH_0123456789abcdef0123456789abcdef/c/o?format=json&limit=2") == (
        "/v1/AUTH_{project}/c/o?format&limit"
    )
    assert causes.path_pattern("http://h:8774/v2.1/servers/123/action") == "/v2.1/servers/{id}/action"


def test_empty_traceback_and_skips() -> None:
    assert causes.classify("").title == "no traceback recorded"
    assert causes.classify_skip(f"Image {_uuid(1)} not active\nmore").title == "Image {id} not active"


def test_catalog_miss_names_the_service() -> None:
    text = (
        'Traceback (most recent call last):\n  File "x.py", line 1, in f\n'
        "tempest.lib.exceptions.EndpointNotFound: Endpoint not found\n"
        "Details: No matching service found in the catalog.\n"
        "Scope: project, Credentials: {'username': 'demo'}\nAuth data: {}\n"
        "Service: image, Region: RegionOne, endpoint_type: public\nCatalog: []\n"
    )
    assert causes.classify(text).title == "endpoint not in the service catalog: image (public, region RegionOne)"


def test_class_names_in_credential_errors_are_masked() -> None:
    def message(classes: str) -> str:
        return (
            'Traceback (most recent call last):\n  File "x.py", line 1, in f\n'
            "tempest.lib.exceptions.InvalidCredentials: Invalid Credentials\n"
            f"Details: Insufficient number of users provided. {classes} have allocated all the credentials\n"
        )

    titles = {causes.classify(message(c)).title for c in ("AccountTest,NetworksIpV6Test", "NetworksApiDiscovery")}
    assert titles == {
        "InvalidCredentials: Invalid Credentials: Insufficient number of users provided. {classes} have allocated"
        " all the credentials"
    }
