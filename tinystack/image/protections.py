"""Property protections (Admin Guide, "Image property protection"): an INI file whose sections are property
regexes and whose ``create``/``read``/``update``/``delete`` options list the roles (or, in ``policies``
format, name the policy rule) allowed to do that to a matching property. The first matching section wins;
a property no section matches is refused. ``@`` allows everyone, ``!`` nobody."""

from __future__ import annotations

import configparser
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OPERATIONS = ("create", "read", "update", "delete")
Creds = Mapping[str, Any]
PolicyCheck = Callable[[str, Creds], bool]


class ProtectionConfigError(ValueError):
    """The property protection file is missing or malformed."""


@dataclass(frozen=True)
class Rule:
    pattern: re.Pattern[str]
    allowed: dict[str, tuple[str, ...]]


class PropertyProtections:
    """``allowed(name, operation, creds)``; ``policy_check`` decides named rules in ``policies`` format."""

    def __init__(self, rules: list[Rule], rule_format: str = "roles",
                 policy_check: PolicyCheck | None = None) -> None:
        self.rules = rules
        self.rule_format = rule_format
        self._policy_check = policy_check

    @classmethod
    def from_text(cls, text: str, rule_format: str = "roles",
                  policy_check: PolicyCheck | None = None) -> PropertyProtections:
        parser = configparser.ConfigParser(interpolation=None, default_section="\x00none")
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        try:
            parser.read_string(text)
        except configparser.Error as exc:
            raise ProtectionConfigError(f"property protection file: {exc}") from None
        rules = []
        for section in parser.sections():
            try:
                pattern = re.compile(section)
            except re.error as exc:
                raise ProtectionConfigError(f"malformed property protection rule [{section}]: {exc}") from None
            allowed = {}
            for op in OPERATIONS:
                if op not in parser[section]:
                    raise ProtectionConfigError(f"property protection rule [{section}] lacks '{op}'")
                values = tuple(v.strip() for v in parser[section][op].split(",") if v.strip())
                if "@" in values and "!" in values:
                    raise ProtectionConfigError(f"[{section}] {op}: '@' and '!' are mutually exclusive")
                if rule_format == "policies" and len(values) > 1:
                    raise ProtectionConfigError(f"[{section}] {op}: one policy rule per operation")
                allowed[op] = values
            rules.append(Rule(pattern, allowed))
        return cls(rules, rule_format, policy_check)

    @classmethod
    def from_file(cls, path: Path, rule_format: str = "roles",
                  policy_check: PolicyCheck | None = None) -> PropertyProtections:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ProtectionConfigError(f"cannot read property protection file {path}: {exc}") from None
        return cls.from_text(text, rule_format, policy_check)

    def allowed(self, name: str, operation: str, creds: Creds) -> bool:
        for rule in self.rules:
            if rule.pattern.search(name):
                break
        else:
            return False
        values = rule.allowed.get(operation, ())
        if not values or "!" in values:
            return False
        if "@" in values:
            return True
        if self.rule_format == "policies":
            return self._policy_check is not None and self._policy_check(values[0], creds)
        have = {r.lower() for r in creds.get("roles", ())}
        return any(v.lower() in have for v in values)


class Unprotected:
    """No protection file: every property is open to whoever may change the image."""

    def allowed(self, name: str, operation: str, creds: Creds) -> bool:
        return True
