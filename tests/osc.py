"""python-openstackclient run in the test process: the same ``openstack`` command line, parser, client code and
output as the installed command, without paying the client's start-up (about a second here) on every call."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator

_lock = threading.Lock()


@contextlib.contextmanager
def _environ(env: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _logging_kept() -> Iterator[None]:
    """The client configures the root logger on every run; put it back as it was."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def _forget_clients() -> None:
    """The client caches each service's client handle on its ClientManager *class* (a descriptor made once per
    process): a later command would reuse an earlier one's credentials. Every command starts without them."""
    from openstackclient.common.clientmanager import ClientManager
    from osc_lib.clientmanager import ClientCache

    for klass in ClientManager.__mro__:
        for value in vars(klass).values():
            if isinstance(value, ClientCache):
                value._handle = None
    # openstacksdk registers every resource's attribute aliases in one dict shared by all resource classes, so
    # once an object-store Object exists in the process, ``updated_at`` means ``last_modified_at`` for a trunk
    # too and openstackclient's show fails. A command in its own process starts with none: so does each here.
    from openstack import resource

    resource.Resource._attr_aliases.clear()


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``openstack *argv`` with ``env`` added to the environment; its exit code, stdout and stderr."""
    from openstackclient import shell

    out, err = io.StringIO(), io.StringIO()
    # Standard input as CI gives the command: empty and not a terminal (image create reads it when not a tty).
    stdin = io.TextIOWrapper(io.BytesIO(b""))
    saved_stdin = sys.stdin
    with _lock, _environ(env), _logging_kept(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        sys.stdin = stdin
        _forget_clients()
        try:
            code = shell.main(list(argv))
        except SystemExit as exc:  # argparse refusing the command line
            code = exc.code if isinstance(exc.code, int) else 1
        finally:
            sys.stdin = saved_stdin
    return subprocess.CompletedProcess(["openstack", *argv], code, out.getvalue(), err.getvalue())
