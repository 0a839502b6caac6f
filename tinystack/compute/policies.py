"""Default compute policy rules, with Nova's rule names (``os_compute_api:...``) so policy files carry over."""

from __future__ import annotations

ADMIN = "role:admin"
OWNER = "project_id:%(project_id)s"
ADMIN_OR_OWNER = f"{ADMIN} or {OWNER}"
ANY = "@"

P = "os_compute_api"

DEFAULTS: dict[str, str] = {
    "context_is_admin": ADMIN,
    "admin_api": ADMIN,
    "admin_or_owner": ADMIN_OR_OWNER,
    f"{P}:servers:index": ADMIN_OR_OWNER,
    f"{P}:servers:index:get_all_tenants": ADMIN,
    f"{P}:servers:detail": ADMIN_OR_OWNER,
    f"{P}:servers:show": ADMIN_OR_OWNER,
    f"{P}:servers:show:host_status": ADMIN,
    f"{P}:servers:create": ADMIN_OR_OWNER,
    f"{P}:servers:create:forced_host": ADMIN,
    f"{P}:servers:update": ADMIN_OR_OWNER,
    f"{P}:servers:delete": ADMIN_OR_OWNER,
    f"{P}:servers:action": ADMIN_OR_OWNER,
    f"{P}:os-extended-server-attributes": ADMIN,
    f"{P}:os-admin-actions:reset_state": ADMIN,
    f"{P}:os-migrate-server:migrate": ADMIN,
    f"{P}:os-migrate-server:migrate_live": ADMIN,
    f"{P}:os-evacuate": ADMIN,
    f"{P}:os-lock-server:unlock:unlock_override": ADMIN,
    f"{P}:os-instance-actions:events": ADMIN,
    # Other services (the block storage service after an extend) tell compute about servers: admin only.
    f"{P}:os-server-external-events:create": ADMIN,
    f"{P}:os-flavor-manage:create": ADMIN,
    f"{P}:os-flavor-manage:update": ADMIN,
    f"{P}:os-flavor-manage:delete": ADMIN,
    f"{P}:os-flavor-extra-specs:manage": ADMIN,
    f"{P}:os-flavor-access": ADMIN,
    f"{P}:os-quota-sets:update": ADMIN,
    f"{P}:os-quota-sets:delete": ADMIN,
    f"{P}:os-quota-sets:show": ADMIN_OR_OWNER,
    f"{P}:extensions": ANY,
    # The network proxies: the networking service's own policy decides what each caller sees.
    f"{P}:os-security-groups:get": ANY,
    f"{P}:os-security-groups:show": ANY,
    f"{P}:os-security-groups:list": ADMIN_OR_OWNER,
    f"{P}:os-networks:list": ANY,
    f"{P}:os-networks:view": ANY,
    f"{P}:os-floating-ip-pools:list": ANY,
    f"{P}:os-floating-ips:list": ANY,
    f"{P}:os-floating-ips:show": ANY,
    f"{P}:os-quota-class-sets:update": ADMIN,
    f"{P}:os-keypairs:other_user": ADMIN,
    **{f"{P}:os-keypairs:{action}": f"{ADMIN} or user_id:%(user_id)s" for action in ("index", "show", "create", "delete")},
    # Reads open to every caller, as before they had a rule, but now a policy file can narrow them.
    **{f"{P}:{rule}": ANY for rule in ("limits", "os-quota-sets:defaults", "os-quota-class-sets:show",
                                       "os-availability-zone:list", "os-flavor-extra-specs:index",
                                       "os-flavor-extra-specs:show")},
    **{f"{P}:os-server-groups:{action}": ADMIN_OR_OWNER for action in ("index", "show", "create", "delete")},
    f"{P}:os-hypervisors": ADMIN,
    f"{P}:os-services": ADMIN,
    f"{P}:os-aggregates:index": ADMIN,
    f"{P}:os-aggregates:create": ADMIN,
    f"{P}:os-aggregates:show": ADMIN,
    f"{P}:os-aggregates:update": ADMIN,
    f"{P}:os-aggregates:delete": ADMIN,
    f"{P}:os-aggregates:add_host": ADMIN,
    f"{P}:os-aggregates:remove_host": ADMIN,
    f"{P}:os-aggregates:set_metadata": ADMIN,
    f"{P}:os-availability-zone:detail": ADMIN,
    f"{P}:os-simple-tenant-usage:list": ADMIN,
    f"{P}:os-simple-tenant-usage:show": ADMIN_OR_OWNER,
    f"{P}:os-migrations:index": ADMIN,
    f"{P}:os-server-diagnostics": ADMIN,
    # Nova's default: a member (not a reader) of the server's project, or an admin.
    f"{P}:os-remote-consoles": f"{ADMIN} or (role:member and {OWNER})",
    f"{P}:ips:index": ADMIN_OR_OWNER,
    f"{P}:ips:show": ADMIN_OR_OWNER,
    f"{P}:os-volumes-attachments:index": ADMIN_OR_OWNER,
    f"{P}:os-volumes-attachments:show": ADMIN_OR_OWNER,
    f"{P}:os-volumes-attachments:create": ADMIN_OR_OWNER,
    f"{P}:os-volumes-attachments:update": ADMIN_OR_OWNER,
    f"{P}:os-volumes-attachments:swap": ADMIN,
    f"{P}:os-volumes-attachments:delete": ADMIN_OR_OWNER,
}
