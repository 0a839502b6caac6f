"""Policy engine: oslo.policy-style rules, compiled once and checked on every request.

Services register defaults; an optional YAML/JSON policy file overrides them and is reloaded when it changes."""

from __future__ import annotations

import functools
import logging
import os
import pathlib
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

import yaml

from tinystack.core.errors import PolicyNotAuthorized

LOG = logging.getLogger(__name__)

Target = Mapping[str, Any]
Creds = Mapping[str, Any]
Check = Callable[[Target, Creds, Mapping[str, "Check"]], bool]
Rules = Mapping[str, Check]
_Render = Callable[[Target], "str | None"]

_MISSING: Any = object()
_TOKEN = re.compile(r"""\s*(?:([()])|((?:%\([^)]*\)s|'[^']*'|"[^"]*"|[^\s()'"])+))""")
_CHECK = re.compile(r"""^('[^']*'|"[^"]*"|[^:]*):(.*)$""", re.DOTALL)
_SUBST = re.compile(r"%\(([^)]+)\)s")
_KIND = re.compile(r"^[A-Za-z_][\w.]*$")
_KEYWORDS = frozenset({"and", "or", "not"})


class PolicyError(ValueError):
    """A rule string does not parse, or the rules reference each other in a loop."""


def _true(target: Target, creds: Creds, rules: Rules) -> bool:
    return True


def _false(target: Target, creds: Creds, rules: Rules) -> bool:
    return False


def _lookup(data: Mapping[str, Any], key: str, path: tuple[str, ...] | None) -> Any:
    """``data[key]``, else the nested path ``data[a][b][c]`` for a dotted key; ``_MISSING`` if absent."""
    try:
        return data[key]
    except (KeyError, TypeError):
        pass
    if path is None:
        return _MISSING
    node: Any = data
    for part in path:
        node = node.get(part, _MISSING) if isinstance(node, Mapping) else _MISSING
        if node is _MISSING:
            break
    return node


def _path(key: str) -> tuple[str, ...] | None:
    return tuple(key.split(".")) if "." in key else None


def _unquote(text: str) -> str | None:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return None


def _renderer(match: str) -> _Render:
    """Compile the right-hand side of a check into ``target -> str | None`` (``None``: no match possible)."""
    quoted = _unquote(match)
    if quoted is not None or "%(" not in match:
        const = match if quoted is None else quoted
        return lambda target: const
    pieces = _SUBST.split(match)
    if len(pieces) == 3 and not pieces[0] and not pieces[2]:
        key, path = pieces[1], _path(pieces[1])

        def one(target: Target) -> str | None:
            value = _lookup(target, key, path)
            # None must not equal None: an unscoped token would otherwise match every unowned target.
            if value is _MISSING or value is None:
                return None
            return value if isinstance(value, str) else str(value)

        return one
    parts = [(p, _path(p)) if i % 2 else p for i, p in enumerate(pieces)]

    def many(target: Target) -> str | None:
        out = []
        for part in parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = _lookup(target, *part)
            if value is _MISSING or value is None:
                return None
            out.append(str(value))
        return "".join(out)

    return many


def _role_check(match: str) -> Check:
    # Literal role names are lowered once here, not on every request.
    render = _renderer(match.lower() if "%(" not in match else match)

    def check(target: Target, creds: Creds, rules: Rules) -> bool:
        want = render(target)
        roles = creds.get("roles")
        if want is None or not roles:
            return False
        if isinstance(roles, str):
            return roles.lower() == want.lower()
        if want in roles:
            return True
        want = want.lower()
        return any(isinstance(r, str) and r.lower() == want for r in roles)

    return check


def _generic_check(kind: str, match: str) -> Check:
    render, path = _renderer(match), _path(kind)

    def check(target: Target, creds: Creds, rules: Rules) -> bool:
        want = render(target)
        if want is None:
            return False
        value = _lookup(creds, kind, path)
        if value is _MISSING or value is None:
            return False
        if isinstance(value, str):
            return value == want
        if isinstance(value, (list, tuple, set, frozenset)):
            return want in value or any(v is not None and str(v) == want for v in value)
        return str(value) == want

    return check


def _rule_ref(name: str) -> Check:
    def check(target: Target, creds: Creds, rules: Rules) -> bool:
        rule = rules.get(name)
        return rule is not None and rule(target, creds, rules)

    return check


def _combine(checks: list[Check], conjunction: bool) -> Check:
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:  # the common case, without the generator overhead of all()/any()
        a, b = checks
        if conjunction:
            return lambda t, c, r: a(t, c, r) and b(t, c, r)
        return lambda t, c, r: a(t, c, r) or b(t, c, r)
    if conjunction:
        return lambda t, c, r: all(f(t, c, r) for f in checks)
    return lambda t, c, r: any(f(t, c, r) for f in checks)


class _Parser:
    """Recursive descent over tokens: ``or`` binds loosest, then ``and``, then ``not``."""

    def __init__(self, text: str) -> None:
        self.text, self.pos, self.refs = text, 0, set[str]()
        self.tokens: list[str] = []
        end = len(text.rstrip())
        i = 0
        while i < end:
            m = _TOKEN.match(text, i)
            if m is None or m.end() == i:
                raise PolicyError(f"Cannot tokenize policy rule {text!r} at offset {i}")
            self.tokens.append(m.group(1) or m.group(2))
            i = m.end()

    def parse(self) -> Check:
        if not self.tokens:
            return _true
        check = self._or()
        if self.pos != len(self.tokens):
            self._fail(f"unexpected {self.tokens[self.pos]!r}")
        return check

    def _fail(self, why: str) -> NoReturn:
        raise PolicyError(f"Invalid policy rule {self.text!r}: {why}")

    def _peek(self) -> str | None:
        return self.tokens[self.pos].lower() if self.pos < len(self.tokens) else None

    def _or(self) -> Check:
        checks = [self._and()]
        while self._peek() == "or":
            self.pos += 1
            checks.append(self._and())
        return _combine(checks, conjunction=False)

    def _and(self) -> Check:
        checks = [self._not()]
        while self._peek() == "and":
            self.pos += 1
            checks.append(self._not())
        return _combine(checks, conjunction=True)

    def _not(self) -> Check:
        if self._peek() == "not":
            self.pos += 1
            inner = self._not()
            return lambda t, c, r: not inner(t, c, r)
        return self._primary()

    def _primary(self) -> Check:
        token = self._peek()
        if token is None:
            self._fail("unexpected end of rule")
        elif token == "(":
            self.pos += 1
            check = self._or()
            if self._peek() != ")":
                self._fail("missing ')'")
            self.pos += 1
            return check
        elif token == ")" or token in _KEYWORDS:
            self._fail(f"unexpected {token!r}")
        atom = self.tokens[self.pos]
        self.pos += 1
        return self._atom(atom)

    def _atom(self, atom: str) -> Check:
        if atom == "@":
            return _true
        if atom == "!":
            return _false
        m = _CHECK.match(atom)
        kind, match = (m.group(1), m.group(2)) if m else ("", "")
        literal = _unquote(kind) if kind not in ("True", "False") else kind
        if m and kind == "rule" and match:
            self.refs.add(match)
            return _rule_ref(match)
        if m and kind == "role" and match:
            return _role_check(match)
        if m and literal is not None:
            render = _renderer(match)
            return lambda t, c, r: render(t) == literal
        if m and match and _KIND.match(kind) and kind not in ("http", "https"):
            return _generic_check(kind, match)
        LOG.warning("Unsupported policy check %r in rule %r; it will always refuse", atom, self.text)
        return _false


@functools.lru_cache(maxsize=4096)
def compile_rule(text: str) -> tuple[Check, frozenset[str]]:
    """Parse ``text`` once into a checker and the names of the rules it references."""
    parser = _Parser(text)
    check = parser.parse()
    return check, frozenset(parser.refs)


def _build(rules: Mapping[str, str]) -> dict[str, Check]:
    """Compile a whole rule set, refusing it if rules reference each other in a loop."""
    compiled = {name: compile_rule(text) for name, text in rules.items()}
    state: dict[str, bool] = {}  # False while on the current path, True once fully explored

    def visit(name: str, trail: list[str]) -> None:
        state[name] = False
        trail.append(name)
        for ref in compiled[name][1]:
            if state.get(ref) is False:
                loop = " -> ".join([*trail[trail.index(ref) :], ref])
                raise PolicyError(f"Policy rules reference each other in a loop: {loop}")
            if ref in compiled and ref not in state:
                visit(ref, trail)
        trail.pop()
        state[name] = True

    for name in compiled:
        if name not in state:
            visit(name, [])
    return {name: check for name, (check, _) in compiled.items()}


class PolicyEngine:
    """Decides whether ``creds`` may perform a named action on ``target``."""

    def __init__(self, policy_file: pathlib.Path | None = None, reload_interval: float = 1.0) -> None:
        self._file = policy_file
        self._interval = reload_interval
        self._lock = threading.Lock()
        self._defaults: dict[str, str] = {}
        self._overrides: dict[str, str] = {}
        self._table: dict[str, Check] = {}
        self._file_sig: tuple[int, ...] | None = None
        self._next_stat = 0.0
        if policy_file is not None:
            self._refresh()

    def register_defaults(self, rules: Mapping[str, str]) -> None:
        """Add or override default rules; raises PolicyError if they do not parse or loop."""
        with self._lock:
            defaults = {**self._defaults, **rules}
            table = _build(defaults)
            try:
                table = _build({**defaults, **self._overrides})
            except PolicyError as exc:
                LOG.error("Policy file %s conflicts with the defaults, ignoring it: %s", self._file, exc)
                self._overrides = {}
            self._defaults, self._table = defaults, table

    def check(self, rule: str, target: Target, creds: Creds) -> bool:
        if self._file is not None and time.monotonic() >= self._next_stat:
            self._refresh()
        table = self._table
        checker = table.get(rule) or table.get("default")
        return checker is not None and checker(target, creds, table)

    def enforce(self, rule: str, target: Target, creds: Creds) -> None:
        if not self.check(rule, target, creds):
            raise PolicyNotAuthorized(f"Policy doesn't allow {rule} to be performed.", rule=rule)

    def rules(self) -> dict[str, str]:
        """The effective rule strings: defaults overlaid by the policy file."""
        if self._file is not None and time.monotonic() >= self._next_stat:
            self._refresh()
        return {**self._defaults, **self._overrides}

    def _refresh(self) -> None:
        assert self._file is not None
        # Another thread is already reloading; keep serving the current rules rather than wait.
        if not self._lock.acquire(blocking=False):
            return
        try:
            self._next_stat = time.monotonic() + self._interval
            try:
                st = os.stat(self._file)
                sig: tuple[int, ...] | None = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
            except FileNotFoundError:
                sig = None
            except OSError as exc:
                LOG.error("Cannot stat policy file %s, keeping current rules: %s", self._file, exc)
                return
            if sig == self._file_sig:
                return
            # Remember the bad version too, so it is reported once rather than on every interval.
            self._file_sig = sig
            try:
                overrides = self._read() if sig is not None else {}
                table = _build({**self._defaults, **overrides})
            except (OSError, ValueError, yaml.YAMLError) as exc:
                LOG.error("Policy file %s is invalid, keeping previous rules: %s", self._file, exc)
                return
            self._overrides, self._table = overrides, table
            LOG.info("Loaded %d policy overrides from %s", len(overrides), self._file)
        finally:
            self._lock.release()

    def _read(self) -> dict[str, str]:
        assert self._file is not None
        data = yaml.safe_load(self._file.read_text(encoding="utf-8"))
        if not isinstance(data, dict | None):
            raise PolicyError("the policy file must be a mapping of rule name to rule string")
        if bad := [k for k, v in (data or {}).items() if not isinstance(k, str) or not isinstance(v, str)]:
            raise PolicyError(f"rule names and rules must be strings: {bad!r}")
        return data or {}
