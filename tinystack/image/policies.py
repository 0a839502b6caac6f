"""Default image policy rules, under Glance's names so a Glance policy file applies unchanged.

Targets carry ``project_id`` and ``owner`` (the image owner), ``member_id`` (the caller's project when it
is a member of the image) and ``visibility``."""

from __future__ import annotations

ADMIN = "rule:context_is_admin"
PROJECT_MEMBER = "role:member and project_id:%(project_id)s"
PROJECT_READER = "role:reader and project_id:%(project_id)s"
_SEES = ("project_id:%(project_id)s or project_id:%(member_id)s or 'community':%(visibility)s"
         " or 'public':%(visibility)s or 'shared':%(visibility)s")
ADMIN_OR_MEMBER = f"{ADMIN} or ({PROJECT_MEMBER})"
ADMIN_OR_READER = f"{ADMIN} or ({PROJECT_READER})"

DEFAULTS: dict[str, str] = {
    "context_is_admin": "role:admin",
    "service_api": "role:service or role:admin",
    "add_image": f"{ADMIN} or ({PROJECT_MEMBER} and project_id:%(owner)s)",
    "delete_image": ADMIN_OR_MEMBER,
    "get_image": f"{ADMIN} or (role:reader and ({_SEES}))",
    "get_images": ADMIN_OR_READER,
    "modify_image": ADMIN_OR_MEMBER,
    "publicize_image": ADMIN,
    "communitize_image": ADMIN_OR_MEMBER,
    "download_image": f"{ADMIN} or (role:member and ({_SEES}))",
    "upload_image": ADMIN_OR_MEMBER,
    "deactivate": ADMIN_OR_MEMBER,
    "reactivate": ADMIN_OR_MEMBER,
    "add_member": ADMIN_OR_MEMBER,
    "delete_member": ADMIN_OR_MEMBER,
    "get_member": f"{ADMIN} or (role:reader and (project_id:%(project_id)s or project_id:%(member_id)s))",
    "get_members": f"{ADMIN} or (role:reader and (project_id:%(project_id)s or project_id:%(member_id)s))",
    "modify_member": f"{ADMIN} or (role:member and project_id:%(member_id)s)",
    "stores_info_detail": ADMIN,
    "delete_image_location": ADMIN,
    "get_image_location": ADMIN,
    "set_image_location": ADMIN,
    # Glance 2.17's location API: for services (nova, cinder) creating images from their own storage.
    "add_image_location": "role:service or role:admin",
    "fetch_image_location": "role:service",
    "copy_image": ADMIN,
    "cache_list": ADMIN,
    "cache_image": ADMIN,
    "cache_delete": ADMIN,
    # The tasks API is for operators (Glance: tasks_api_access); a task's own rules come after it.
    "tasks_api_access": ADMIN,
    "get_task": ADMIN_OR_READER,
    "get_tasks": ADMIN_OR_READER,
    "add_task": ADMIN_OR_MEMBER,
    "modify_task": ADMIN_OR_MEMBER,
    # The metadata definitions catalog: read by everyone (namespaces' visibility applies), kept by admins.
    "metadef_default": "",
    "metadef_admin": "role:admin",
    **{f"get_metadef_{name}": "rule:metadef_default" for name in (
        "namespace", "namespaces", "object", "objects", "property", "properties", "tag", "tags", "resource_type")},
    "list_metadef_resource_types": "rule:metadef_default",
    **{rule: "rule:metadef_admin" for rule in (
        "add_metadef_namespace", "modify_metadef_namespace", "delete_metadef_namespace", "add_metadef_object",
        "modify_metadef_object", "remove_metadef_object", "add_metadef_property", "modify_metadef_property",
        "remove_metadef_property", "add_metadef_tag", "add_metadef_tags", "modify_metadef_tag", "delete_metadef_tag",
        "delete_metadef_tags", "add_metadef_resource_type_association", "remove_metadef_resource_type_association")},
}
