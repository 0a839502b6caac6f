"""Extra DHCP options, at unit level: the request rules (merge by name and version, null removes, only names
dnsmasq knows) and what the dataplane writes for dnsmasq, checked by dnsmasq's own syntax check."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tinystack.core import errors
from tinystack.network import dhcpopts
from tinystack.network.dataplane import dnsmasq

pytestmark = pytest.mark.unit

PORT = "0d6f7c56-2a9e-4f61-9c36-4c1b7d2f8e01"


def _doc() -> dict[str, object]:
    opts = dhcpopts.created([{"opt_name": "bootfile-name", "opt_value": "pxelinux.0"},
                             {"opt_name": "66", "opt_value": "10.0.0.9"},
                             {"opt_name": "ntp-server", "opt_value": "[fd00::1]", "ip_version": 6}])
    return {"dns_domain": "openstacklocal",
            "port": {"id": "dhcp-port", "fixed_ips": [{"ip_address": "10.0.0.2"}]},
            "subnets": [{"id": "sub", "cidr": "10.0.0.0/24", "gateway_ip": "10.0.0.1", "ip_version": 4}],
            "hosts": [{"mac": "fa:16:3e:00:00:01", "ip": "10.0.0.3", "hostname": "vm1", "port_id": PORT,
                       "opts": opts},
                      {"mac": "fa:16:3e:00:00:02", "ip": "10.0.0.4", "hostname": "vm2"}]}


def test_hosts_tag_only_ports_with_options() -> None:
    hosts = dnsmasq.render_hosts(_doc()).splitlines()
    assert hosts == [f"fa:16:3e:00:00:01,set:port-{PORT},vm1.openstacklocal,10.0.0.3",
                     "fa:16:3e:00:00:02,vm2.openstacklocal,10.0.0.4"]


def test_opts_file_serves_each_option_behind_the_port_tag() -> None:
    lines = dnsmasq.render_opts(_doc()).splitlines()
    assert lines[0] == "tag:subnet-sub,option:router,10.0.0.1"
    mine = [line for line in lines if line.startswith(f"tag:port-{PORT},")]
    assert mine == [f"tag:port-{PORT},66,10.0.0.9", f"tag:port-{PORT},option:bootfile-name,pxelinux.0",
                    f"tag:port-{PORT},option6:ntp-server,[fd00::1]"]
    assert lines[-len(mine):] == mine  # after the subnet lines: the port's own value wins


@pytest.mark.skipif(shutil.which("dnsmasq") is None, reason="dnsmasq is not installed")
def test_dnsmasq_accepts_what_is_written(tmp_path: Path) -> None:
    doc = _doc()
    conf = tmp_path / "check.conf"
    conf.write_text("".join(f"dhcp-option={line}\n" for line in dnsmasq.render_opts(doc).splitlines())
                    + "".join(f"dhcp-host={line}\n" for line in dnsmasq.render_hosts(doc).splitlines()))
    proc = subprocess.run(["dnsmasq", "--test", f"--conf-file={conf}"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_update_merges_and_null_removes() -> None:
    current = dhcpopts.created([{"opt_name": "tftp-server", "opt_value": "10.0.0.5"},
                                {"opt_name": "bootfile-name", "opt_value": "a"}])
    out = dhcpopts.merged(current, [{"opt_name": "bootfile-name", "opt_value": "b"},
                                    {"opt_name": "tftp-server", "opt_value": None},
                                    {"opt_name": "domain-search", "opt_value": "example.org", "ip_version": 6}])
    assert out == [{"opt_name": "bootfile-name", "opt_value": "b", "ip_version": 4},
                   {"opt_name": "domain-search", "opt_value": "example.org", "ip_version": 6}]


@pytest.mark.parametrize("raw", [
    "bootfile-name=x",
    [{"opt_name": "no-such-option", "opt_value": "1"}],
    [{"opt_name": "bootfile-name", "opt_value": "a\nb"}],
    [{"opt_name": "bootfile-name", "opt_value": "a", "ip_version": 5}],
    [{"opt_name": "router", "opt_value": "10.0.0.1", "ip_version": 6}],
    [{"opt_name": "300", "opt_value": "x"}],
    [{"opt_value": "x"}],
    [{"opt_name": "mtu", "opt_value": "1400", "extra": 1}],
])
def test_bad_options_are_400(raw: object) -> None:
    with pytest.raises(errors.BadRequest):
        dhcpopts.parse(raw)
