"""A real guest configured from a config drive through the API: it finds the drive, takes its hostname from it and
runs the user-data given at create. The guest is the session's shared one (tests/e2e/conftest.py), booted with
``config_drive=True`` and ``guests.USER_DATA``."""

from __future__ import annotations

import pytest

from tests.e2e import guests

pytestmark = [pytest.mark.guest, pytest.mark.e2e, pytest.mark.slow, pytest.mark.privileged]


def test_config_drive_server(ssh_guest: guests.SshGuest) -> None:
    name = ssh_guest.name
    # Another check may have stopped and started the guest: every boot configures it from the drive again.
    console = guests.wait_console(ssh_guest.conn, ssh_guest.server, f"cd-user-data on {name}")
    assert "config drive" in console.lower(), console[-3000:]
    assert f"hostname set to {name}" in console and f"cd-user-data on {name}" in console, console[-3000:]
