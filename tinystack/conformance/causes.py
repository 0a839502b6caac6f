"""Name the cause of a failed test from its traceback and the requests it made, in a form that groups:
ids, random names and hosts' numbers are masked, so one broken endpoint is one cause, not fifty."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

# tempest.lib.exceptions class -> the HTTP status it stands for
HTTP_EXCEPTIONS = {
    "BadRequest": 400,
    "Unauthorized": 401,
    "Forbidden": 403,
    "NotFound": 404,
    "NotAcceptable": 406,
    "Conflict": 409,
    "Gone": 410,
    "PreconditionFailed": 412,
    "OverLimit": 413,
    "RateLimitExceeded": 413,
    "InvalidContentType": 415,
    "UnprocessableEntity": 422,
    "ServerFault": 500,
    "NotImplemented": 501,
}
# raised after a response arrived whose body, headers or code were not what the API reference says
RESPONSE_EXCEPTIONS = {
    "UnexpectedResponseCode",
    "InvalidHttpSuccessCode",
    "InvalidHTTPResponseBody",
    "InvalidHTTPResponseHeader",
    "UnexpectedContentType",
    "ResponseWithNonEmptyBody",
    "ResponseWithEntity",
}
CONNECTION_EXCEPTIONS = {
    "MaxRetryError",
    "NewConnectionError",
    "ConnectionRefusedError",
    "ConnectionError",
    "ConnectFailure",
}
TIMEOUT_EXCEPTIONS = {"TimeoutException", "TimeoutError", "ReadTimeoutError", "Timeout"}

UUID_RE = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")
HEX_RE = re.compile(r"\b[0-9a-fA-F]{16,}\b")
TEMPEST_NAME_RE = re.compile(r"tempest-[\w.-]*?-\d+\b")
BIG_NUMBER_RE = re.compile(r"\b\d{5,}\b")
# Tempest test classes named in messages ("Insufficient number of users provided. AccountTest,NetworksTest have…")
TEST_CLASSES_RE = re.compile(r"\b[A-Z]\w*Test\w*(?:,[A-Z]\w*)*|(?<=provided\. )[A-Z][\w,]*(?= have allocated)")
CATALOG_MISS_RE = re.compile(r"Service: ([\w-]+), Region: ([\w-]*), endpoint_type: (\w+)")
EXC_LINE_RE = re.compile(r"^([A-Za-z_][\w.]*)(?::\s?(.*))?$")
HOST_RE = re.compile(r"host='([^']+)', port=(\d+)")
FRAME_RE = re.compile(r'File "[^"]*/tempest/(?:lib/)?services/(?:[\w/]+/)?(\w+)\.py", line \d+, in (\w+)')
REQUEST_RE = re.compile(r"^(\d{3}) ([A-Z]+) (\S+)$")
BODY_MESSAGE_RE = re.compile(r"""['"]message['"]:\s*['"]([^'"]{1,300})""")


@dataclass(frozen=True)
class Cause:
    """``title`` is the grouping key and what people read."""

    kind: str
    title: str


def mask(text: str) -> str:
    """Replace what differs between runs (ids, generated names, long numbers) with placeholders."""
    text = UUID_RE.sub("{id}", text)
    text = HEX_RE.sub("{id}", text)
    text = TEMPEST_NAME_RE.sub("{name}", text)
    text = TEST_CLASSES_RE.sub("{classes}", text)
    return BIG_NUMBER_RE.sub("{n}", text)


def path_pattern(url: str) -> str:
    """``http://h:9292/v2/images/<uuid>?limit=1`` -> ``/v2/images/{id}?limit``."""
    parts = urlsplit(url)
    path = parts.path if parts.scheme else url.split("?", 1)[0]
    segments = []
    for segment in path.split("/"):
        masked = mask(segment)
        if masked != segment or segment.isdigit():
            masked = "AUTH_{project}" if segment.startswith("AUTH_") else "{id}"
        segments.append(masked)
    query = urlsplit(url).query
    keys = sorted({pair.split("=", 1)[0] for pair in query.split("&") if pair})
    return "/".join(segments) + ("?" + "&".join(keys) if keys else "")


def final_exception(traceback: str) -> tuple[str, str]:
    """The type and message of the exception a traceback ends with (the last of a chain)."""
    lines = traceback.rstrip().splitlines()
    start = max((i for i, line in enumerate(lines) if line.startswith("Traceback (")), default=-1)
    for i in range(start + 1, len(lines)):
        line = lines[i]
        if line and not line[0].isspace():
            match = EXC_LINE_RE.match(line)
            if match:
                message = "\n".join([match.group(2) or "", *lines[i + 1 :]]).strip()
                return match.group(1), message
    last = lines[-1].strip() if lines else ""
    return ("", last)


def failing_request(requests: list[str], want_error: bool) -> tuple[str, str, str] | None:
    """The last request (status, method, url) — the last failing one if ``want_error``."""
    parsed = [(m.group(1), m.group(2), m.group(3)) for m in (REQUEST_RE.match(r) for r in requests) if m]
    if want_error:
        parsed = [p for p in parsed if int(p[0]) >= 400] or parsed
    return parsed[-1] if parsed else None


def service_call(traceback: str) -> str:
    """``images_client.show_image``: the last Tempest service-client call in the traceback."""
    calls = FRAME_RE.findall(traceback)
    calls = [c for c in calls if c[0] != "rest_client"]
    return f"{calls[-1][0]}.{calls[-1][1]}" if calls else ""


def details_of(message: str) -> str:
    """The useful part of a Tempest error's "Details:" line: its text, or the message inside a response body."""
    line = next((ln[len("Details: ") :] for ln in message.splitlines() if ln.startswith("Details: ")), "")
    body_message = BODY_MESSAGE_RE.search(line)
    if body_message:
        line = body_message.group(1)
    elif line.startswith(("{", "[", "b'", 'b"')):
        return ""
    return mask(line.strip())[:160]


def classify(traceback: str, requests: list[str] | None = None) -> Cause:
    """Name a failure from its traceback and the requests the test made (``"404 GET http://…"``)."""
    requests = requests or []
    exc_type, message = final_exception(traceback)
    short = exc_type.rsplit(".", 1)[-1]
    first = mask(message.splitlines()[0] if message else "")[:200]
    call = service_call(traceback)
    where = f" in {call}" if call else ""
    if short in CONNECTION_EXCEPTIONS or "Connection refused" in message:
        # One endpoint down is one cause, whatever path or client call met it first.
        host = HOST_RE.search(message)
        return Cause("connection", f"cannot connect to {host.group(1)}:{host.group(2)}" if host else "cannot connect")
    if short == "EndpointNotFound":
        miss = CATALOG_MISS_RE.search(message)
        if miss:
            service, region, interface = miss.groups()
            return Cause("catalog", f"endpoint not in the service catalog: {service} ({interface}, region {region or '-'})")
        detail = mask(" ".join(message.split())).replace("Endpoint not found Details: ", "")
        return Cause("catalog", f"endpoint not in the service catalog: {detail[:200]}")
    if short in HTTP_EXCEPTIONS or short in RESPONSE_EXCEPTIONS:
        request = failing_request(requests, want_error=short in HTTP_EXCEPTIONS)
        status = str(HTTP_EXCEPTIONS.get(short, "")) or (request[0] if request else "")
        target = f" {request[1]} {path_pattern(request[2])}" if request else ""
        if short in HTTP_EXCEPTIONS:
            said = f": {detail}" if (detail := details_of(message)) else ""
            return Cause("http", f"HTTP {status} {short}{where}{target}{said}".replace("  ", " "))
        return Cause("response", f"{short}{where}{target}: {first}")
    if short in TIMEOUT_EXCEPTIONS:
        return Cause("timeout", f"{short}{where}: {first}")
    if not exc_type:
        return Cause("other", first or "no traceback recorded")
    if "Mismatch" in short or "Assertion" in short:
        return Cause("assertion", f"{short}{where}: {first}")
    # Tempest's own errors put the useful part on a "Details:" line; an HTTP error just before often explains it.
    details = details_of(message)
    text = f"{first}: {details}" if details and details not in first else first
    request = failing_request(requests, want_error=True)
    after = f" (after {request[0]} {request[1]} {path_pattern(request[2])})" if request and int(request[0]) >= 400 else ""
    return Cause("error", f"{short}{where}: {text}{after}")


def classify_skip(reason: str) -> Cause:
    return Cause("skip", mask(reason.strip().splitlines()[0] if reason.strip() else "no reason given")[:200])
