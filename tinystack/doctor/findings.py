"""What a check found: one problem (or one fact) with what to do about it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

OK = "ok"
INFO = "info"
WARNING = "warning"
ERROR = "error"
# Findings at these levels make the cloud unhealthy (exit status 1).
PROBLEMS = (WARNING, ERROR)


@dataclass(frozen=True)
class Finding:
    """``check``: the family (services, stuck, orphans...); ``subject``: what it is about (a host, a resource id);
    ``what``: what is wrong (or true); ``todo``: what the operator should do, empty when nothing."""

    check: str
    level: str
    what: str
    todo: str = ""
    subject: str = ""

    @property
    def problem(self) -> bool:
        return self.level in PROBLEMS

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def ok(check: str, what: str, subject: str = "") -> Finding:
    return Finding(check, OK, what, "", subject)


def info(check: str, what: str, subject: str = "") -> Finding:
    return Finding(check, INFO, what, "", subject)


def warning(check: str, what: str, todo: str, subject: str = "") -> Finding:
    return Finding(check, WARNING, what, todo, subject)


def error(check: str, what: str, todo: str, subject: str = "") -> Finding:
    return Finding(check, ERROR, what, todo, subject)


def ago(seconds: float) -> str:
    """``95`` -> ``1 min 35 s ago``: how long since a heartbeat or an update, for people."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s ago"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min ago"
