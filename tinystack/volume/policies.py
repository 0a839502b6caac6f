"""Default block storage policy rules, with Cinder's rule names so policy files carry over."""

from __future__ import annotations

ADMIN = "role:admin"
OWNER = "project_id:%(project_id)s"
ADMIN_OR_OWNER = f"{ADMIN} or {OWNER}"

DEFAULTS: dict[str, str] = {
    "volume:create": ADMIN_OR_OWNER,
    "volume:get": ADMIN_OR_OWNER,
    "volume:get_all": ADMIN_OR_OWNER,
    "volume:update": ADMIN_OR_OWNER,
    "volume:delete": ADMIN_OR_OWNER,
    "volume:extend": ADMIN_OR_OWNER,
    "volume:update_readonly_flag": ADMIN_OR_OWNER,
    "volume:update_volume_metadata": ADMIN_OR_OWNER,
    "volume:delete_volume_metadata": ADMIN_OR_OWNER,
    "volume:get_volume_metadata": ADMIN_OR_OWNER,
    "volume:create_snapshot": ADMIN_OR_OWNER,
    "volume:get_snapshot": ADMIN_OR_OWNER,
    "volume:get_all_snapshots": ADMIN_OR_OWNER,
    "volume:update_snapshot": ADMIN_OR_OWNER,
    "volume:delete_snapshot": ADMIN_OR_OWNER,
    "volume:snapshot_metadata": ADMIN_OR_OWNER,
    "volume:copy_volume_to_image": ADMIN_OR_OWNER,
    "volume_extension:volume_actions:upload_public": ADMIN,
    "volume_extension:volume_admin_actions:reset_status": ADMIN,
    "volume_extension:snapshot_admin_actions:reset_status": ADMIN,
    "volume_extension:volume_admin_actions:force_delete": ADMIN,
    "volume_extension:snapshot_admin_actions:force_delete": ADMIN,
    "volume_extension:volume_host_attribute": ADMIN,
    "volume_extension:volume_mig_status_attribute": ADMIN,
    "volume_extension:volume_tenant_attribute": ADMIN_OR_OWNER,
    "volume:get_all_tenants": ADMIN,
    "volume_extension:types_manage": ADMIN,
    "volume_extension:types_extra_specs:index": ADMIN_OR_OWNER,
    "volume_extension:quotas:show": ADMIN_OR_OWNER,
    "volume_extension:quotas:update": ADMIN,
    "volume_extension:quotas:delete": ADMIN,
    "volume_extension:services:index": ADMIN,
    "volume_extension:hosts": ADMIN,
}
