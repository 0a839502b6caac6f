"""Bootcamp Day 6 as an Ansible playbook (the ``openstack.cloud`` collection the ``ansible`` package bundles) against
a real-guest cloud: the first pass builds everything, the second pass of the same tasks must change nothing, then
the ``*_info`` modules read it back and the guest answers ssh through its floating IP, and the removal playbook must
leave nothing behind (issue 18). All three in one ``ansible-playbook`` run: its start-up and inventory cost once.

Ansible runs from its own virtualenv inside the test venv (``.venv/ansible``, made by ``scripts/setup --test``):
the collection needs an openstacksdk older than the one python-openstackclient needs (pyproject.toml, extra
``ansible``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import guests
from tests.livecloud import LiveCloud

pytestmark = [pytest.mark.guest, pytest.mark.e2e, pytest.mark.slow, pytest.mark.privileged]

PLAYBOOKS = Path(__file__).resolve().parent / "ansible"
ANSIBLE_PLAYBOOK = Path(sys.prefix) / "ansible" / "bin" / "ansible-playbook"


def playbook(cloud: LiveCloud, work: Path, names: list[str], extra: dict[str, str]) -> dict[str, Any]:
    """Run playbooks of tests/e2e/ansible, in order, in one ``ansible-playbook`` with the JSON callback; its parsed
    output (plays, tasks, stats)."""
    assert ANSIBLE_PLAYBOOK.exists(), f"{ANSIBLE_PLAYBOOK} is missing: run scripts/setup --test"
    env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(cloud.clouds_yaml),
           "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_HOME": str(work / "ansible-home"),
           "ANSIBLE_LOCAL_TEMP": str(work / "ansible-tmp"), "ANSIBLE_REMOTE_TEMP": str(work / "ansible-remote-tmp"),
           "ANSIBLE_NOCOLOR": "1", "ANSIBLE_RETRY_FILES_ENABLED": "0",
           # The module goes to the interpreter's standard input: no temporary file and its shell commands each time.
           "ANSIBLE_PIPELINING": "1",
           "PYTHONWARNINGS": "ignore"}
    name = " ".join(names)
    args = [str(ANSIBLE_PLAYBOOK), "-i", str(PLAYBOOKS / "inventory.ini"), *(str(PLAYBOOKS / n) for n in names)]
    for key, value in extra.items():
        args += ["-e", f"{key}={value}"]
    proc = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=1200)
    # Kept beside the run: each task's result and start and end time, for a failure or a slow run.
    (work / f"{'+'.join(Path(n).stem for n in names)}.json").write_text(proc.stdout)
    try:
        # One document a playbook, each with the plays of the run so far: every play once, by its id.
        plays = {p["play"]["id"]: p for doc in documents(proc.stdout) for p in doc["plays"]}
        out: dict[str, Any] = {"plays": list(plays.values())}
    except (json.JSONDecodeError, KeyError):
        raise AssertionError(f"{name}: no JSON from ansible-playbook ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                             f"{proc.stderr[-3000:]}") from None
    assert proc.returncode == 0, f"{name} failed ({proc.returncode}): {failures(out)}\n{proc.stderr[-2000:]}"
    return out


def documents(text: str) -> list[dict[str, Any]]:
    """The JSON documents in the callback's output, one a playbook."""
    decoder, docs, pos = json.JSONDecoder(), [], 0
    while text[pos:].strip():
        pos += len(text[pos:]) - len(text[pos:].lstrip())
        doc, pos = decoder.raw_decode(text, pos)
        docs.append(doc)
    if not docs:
        raise json.JSONDecodeError("no document", text, 0)
    return docs


def failures(out: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(task["task"]["name"], result.get("msg", result))
            for play in out["plays"] for task in play["tasks"]
            for result in task["hosts"].values() if result.get("failed")]


def play(out: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(p for p in out["plays"] if p["play"]["name"] == name)
    return found


def changed_tasks(one_play: dict[str, Any]) -> list[str]:
    return [task["task"]["name"] for task in one_play["tasks"]
            if any(result.get("changed") for result in task["hosts"].values())]


def result_of(one_play: dict[str, Any], task_name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(task["hosts"]["localhost"] for task in one_play["tasks"]
                                 if task["task"]["name"] == task_name)
    return found


def test_day6_playbook_twice_then_removal(guest_cloud: LiveCloud, tmp_path: Path) -> None:
    cloud = guest_cloud
    prefix = guests.unique("d6a")
    key = tmp_path / "id_rsa"
    subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", str(key)], check=True)
    image = tmp_path / "day6.img"
    image.write_bytes(os.urandom(1024 * 1024))
    extra = {"prefix": prefix, "public_key_file": f"{key}.pub", "private_key_file": str(key),
             "image_file": str(image), "external_netns": cloud.external_netns}
    removed = False
    try:
        out = playbook(cloud, tmp_path, ["day6.yml", "day6_remove.yml"], extra)
        removed = True
        first = play(out, "Bootcamp Day 6 on tinystack")
        assert changed_tasks(first) == [t["task"]["name"] for t in first["tasks"]]  # a new prefix: all is made
        second = play(out, "Bootcamp Day 6 again (nothing may change), then what the cloud reports")
        assert [t["task"]["name"] for t in second["tasks"][:len(first["tasks"])]] == \
            [t["task"]["name"] for t in first["tasks"]]
        assert changed_tasks(second) == []
        ssh_check = result_of(second, "The server answers ssh through its floating IP")
        assert ssh_check["rc"] == 0 and ssh_check["stdout"].strip() == f"{prefix}-vm", ssh_check
        server = result_of(second, "Server info")["servers"][0]
        network_id = result_of(second, "Network info")["networks"][0]["id"]
        fip = result_of(second, "Floating IP info")["floating_ips"][0]["floating_ip_address"]
        admin = cloud.conn("admin")
        demo = cloud.conn("demo")
        assert demo.compute.find_server(server["id"]) is None
        assert list(admin.network.ports(device_id=server["id"])) == []
        assert list(admin.network.ports(network_id=network_id)) == []
        assert list(admin.network.ips(floating_ip_address=fip)) == []
        assert [v.name for v in demo.block_storage.volumes() if v.name.startswith(prefix)] == []
        assert [i.name for i in demo.image.images() if i.name.startswith(prefix)] == []
        assert [k.name for k in demo.compute.keypairs() if k.name.startswith(prefix)] == []
        for kind in ("routers", "networks", "subnets", "security_groups"):
            left = [r.name for r in getattr(admin.network, kind)() if (r.name or "").startswith(prefix)]
            assert left == [], (kind, left)
    finally:
        if not removed:
            # The cloud is shared: what the playbook made goes even when the test failed half-way.
            try:
                playbook(cloud, tmp_path, ["day6_remove.yml"], extra)
            except AssertionError as exc:
                print(f"removal after a failure failed too: {exc}")
