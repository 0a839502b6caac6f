"""Turn a subunit v2 stream on stdin into one JSON object per test on stdout.

Runs under the Tempest venv's interpreter (it has python-subunit and testtools), never imported by tinystack.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

# Attachments kept verbatim; the rest (captured logs can be megabytes) are only named.
KEPT_DETAILS = ("traceback", "reason")
MAX_DETAIL_CHARS = 20000
# Tempest's rest client logs "Request (Class:test): 404 GET http://host/path 0.012s" for every call.
REQUEST_RE = re.compile(r"Request \([^)]*\): (\d{3} [A-Z]+ \S+)")
MAX_REQUESTS = 50


def _text(content: Any, limit: int | None = MAX_DETAIL_CHARS) -> str:
    try:
        text = "".join(content.iter_text())
        return text[-limit:] if limit else text
    except Exception:  # a binary attachment: not worth failing the dump for
        return ""


def _emit(test: dict[str, Any]) -> None:
    details = {name: _text(c) for name, c in test["details"].items() if name in KEPT_DETAILS}
    requests: list[str] = []
    for name, content in test["details"].items():
        if name.startswith("pythonlogging"):
            requests += REQUEST_RE.findall(_text(content, limit=None))
    start, stop = test["timestamps"]
    record = {
        "id": test["id"],
        "status": test["status"],
        "tags": sorted(test["tags"]),
        "details": details,
        "requests": requests[-MAX_REQUESTS:],
        "duration": (stop - start).total_seconds() if start and stop else None,
    }
    sys.stdout.write(json.dumps(record) + "\n")


def main() -> int:
    import subunit
    import testtools

    stream = sys.stdin.buffer
    result = testtools.StreamToDict(_emit)
    result.startTestRun()
    try:
        subunit.ByteStreamToStreamResult(stream, non_subunit_name="stdout").run(result)
    finally:
        result.stopTestRun()
    return 0


if __name__ == "__main__":
    sys.exit(main())
