"""The steps of Bootcamp Day 6 ("Field Training Exercise") as a user takes them in the dashboard, shared by the
flow on the fake drivers (test_browser_day6.py) and the one with a real guest (test_browser_day6_guest.py). Each
step starts from the page it names and checks what that page shows afterwards."""

from __future__ import annotations

from pathlib import Path

from tests.dashboard.browser import Browser
from tests.dashboard.conftest import password
from tests.livecloud import LiveCloud


def login(b: Browser, live: LiveCloud, cloud: str) -> None:
    """Log in as the user of ``cloud`` (logging out first when the shared browser is still logged in)."""
    user, pw = password(live, cloud)
    b.go("/auth/login/")
    if b.all("#logout"):
        b.click(b.css("#logout"))
    b.fill("#login-form", {"domain": "Default", "username": user, "password": pw})
    b.wait_text("#current-user", user)


def network_and_router(b: Browser, net: str, router: str, cidr: str) -> None:
    """A network with a subnet ``<net>-subnet`` on ``cidr`` (a /24), and a router with the public gateway and an
    interface on it (the interface's address is the subnet's first). Ends on the router's page."""
    b.go("/project/networks/")
    b.fill("#create-network", {"name": net, "subnet_name": f"{net}-subnet", "cidr": cidr})
    b.wait_text("#subnets", cidr)
    b.no_error()
    b.go("/project/routers/")
    b.fill("#create-router", {"name": router, "external_network": "public"})
    b.wait_text("h1", router)
    b.fill("#add-interface", {"subnet": f"{net}-subnet ({cidr})"})
    b.wait_text("#router-interfaces", cidr.rsplit(".", 1)[0] + ".1")
    b.no_error()


def ssh_and_icmp_rules(b: Browser) -> None:
    """The SSH and ALL ICMP rules in the project's ``default`` security group."""
    b.go("/project/security_groups/")
    b.click(b.row("#security-groups", "default").find_element("css selector", "a"))
    for rule in ("SSH", "ALL ICMP"):
        b.fill("#add-rule", {"rule": rule})
        b.wait(lambda rule=rule: any(rule in a for a in b.alerts()))
    rules = b.css("#rules").text
    assert "tcp 22" in rules and "icmp" in rules


def key_pair(b: Browser, key: str) -> Path:
    """A new key pair, listed on its page; its private key, downloaded (once, as the dashboard offers it)."""
    b.go("/project/key_pairs/")
    b.fill("#create-keypair", {"name": key}, submit=False)
    b.click(b.css("#create-keypair-submit"), navigates=False)  # the answer is a download, not a page
    pem = b.downloaded(f"{key}.pem")
    assert "PRIVATE KEY" in pem.read_text()
    b.go("/project/key_pairs/")
    b.wait_text("#keypairs", key)
    return pem


def launch(b: Browser, vm: str, source: str, key: str, net: str, timeout: float, flavor: str | None = None) -> None:
    """From the launch wizard's page: one instance of ``source`` with ``key`` on ``net``, whose ACTIVE status shows
    on the instances page without a reload."""
    b.fill("#launch-form", {"name": vm, "source_id": source, "key_name": key}, submit=False)
    if flavor is not None:
        b.click(b.css(f'[id="flavor-{flavor}"]'), navigates=False)
    b.click(b.css(f'input[name="networks"][data-name="{net}"]'), navigates=False)
    b.click(b.css("#launch-submit"))
    b.wait_text("#instances", vm)
    b.no_error()
    b.mark()
    b.wait(lambda: b.row("#instances", vm).get_attribute("data-status") == "ACTIVE", timeout,
           "the instance never went ACTIVE")
    assert b.marked(), "the page was reloaded: the status should change in place"


def floating_ip(b: Browser, vm: str) -> str:
    """A floating IP from the public pool, associated from the instance's page; the page's URL (without a tab)."""
    b.go("/project/floating_ips/")
    b.fill("#allocate-fip", {"pool": "public"})
    b.no_error()
    b.go("/project/instances/")
    b.click(b.row("#instances", vm).find_element("css selector", "a"))
    b.wait_text("h1", vm)
    server_url: str = b.d.current_url.split("?")[0]
    b.fill("#form-associate-fip", {})
    b.wait_text("#ip-addresses", "(floating)")
    b.no_error()
    return server_url


def release_network(b: Browser, net: str, router: str, key: str) -> None:
    """Once the instance is gone: the floating IP released, the router's interface and the router, the network and
    the key pair deleted."""
    b.go("/project/floating_ips/")
    for tr in b.all("#floating-ips tbody tr"):
        if "Release" in tr.text:
            b.click(b.row("#floating-ips", tr.text.split()[0]).find_element(
                "xpath", ".//button[text()='Release Floating IP']"))
            b.no_error()
            break
    b.go("/project/routers/")
    b.click(b.row("#routers", router).find_element("css selector", "a"))
    b.click(b.css("#router-interfaces button"))
    b.no_error()
    b.go("/project/routers/")
    b.click(b.row("#routers", router).find_element("xpath", ".//button[text()='Delete Router']"))
    b.no_error()
    b.go("/project/networks/")
    b.click(b.row("#networks", net).find_element("xpath", ".//button[text()='Delete Network']"))
    b.no_error()
    b.go("/project/key_pairs/")
    b.click(b.row("#keypairs", key).find_element("css selector", "button"))
    b.no_error()
