"""The JSON schemas Glance publishes under ``/v2/schemas/*``; the image schema also validates requests."""

from __future__ import annotations

import copy
from typing import Any

from tinystack.image.formats import CONTAINER_FORMATS, DISK_FORMATS

UUID_PATTERN = "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"
STATUSES = ["queued", "saving", "active", "killed", "deleted", "uploading", "importing", "pending_delete",
            "deactivated"]
VISIBILITIES = ["community", "public", "private", "shared"]

# Attributes the service sets; a client naming one in a create or patch is refused (403, as Glance).
READ_ONLY = ("created_at", "updated_at", "status", "checksum", "size", "virtual_size", "direct_url", "self",
             "file", "schema", "id", "os_hash_algo", "os_hash_value", "stores", "locations")
# Names no property may take, and the namespace Glance keeps for itself.
RESERVED = ("location", "deleted", "deleted_at")
RESERVED_PREFIX = "os_glance"


def _s(kind: Any, description: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "description": description, **extra}


def _ro(kind: Any, description: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "readOnly": True, "description": description, **extra}


BASE_PROPERTIES: dict[str, Any] = {
    "id": _s("string", "An identifier for the image", pattern=UUID_PATTERN),
    "name": _s(["null", "string"], "Descriptive name for the image", maxLength=255),
    "status": _ro("string", "Status of the image", enum=STATUSES),
    "visibility": _s("string", "Scope of image accessibility", enum=VISIBILITIES),
    "protected": _s("boolean", "If true, image will not be deletable."),
    "os_hidden": _s("boolean", "If true, image will not appear in default image list response."),
    "checksum": _ro(["null", "string"], "md5 hash of image contents.", maxLength=32),
    "os_hash_algo": _ro(["null", "string"], "Algorithm to calculate the os_hash_value", maxLength=64),
    "os_hash_value": _ro(["null", "string"], "Hexdigest of the image contents using the algorithm specified "
                                             "by the os_hash_algo", maxLength=128),
    "owner": _s(["null", "string"], "Owner of the image", maxLength=255),
    "size": _ro(["null", "integer"], "Size of image file in bytes"),
    "virtual_size": _ro(["null", "integer"], "Virtual size of image in bytes"),
    "container_format": _s(["null", "string"], "Format of the container", enum=[None, *CONTAINER_FORMATS]),
    "disk_format": _s(["null", "string"], "Format of the disk", enum=[None, *DISK_FORMATS]),
    "created_at": _ro("string", "Date and time of image registration"),
    "updated_at": _ro("string", "Date and time of the last image modification"),
    "tags": _s("array", "List of strings related to the image", items={"type": "string", "maxLength": 255}),
    "direct_url": _ro("string", "URL to access the image file kept in external store"),
    "min_ram": _s("integer", "Amount of ram (in MB) required to boot image."),
    "min_disk": _s("integer", "Amount of disk space (in GB) required to boot image."),
    "self": _ro("string", "An image self url"),
    "file": _ro("string", "An image file url"),
    "stores": _ro("string", "Store in which image data resides.  Only present when the operator has enabled "
                            "multiple stores.  May be a comma-separated list of store identifiers."),
    "schema": _ro("string", "An image schema url"),
    "locations": _s("array", "A set of URLs to access the image file kept in external store",
                    items={"type": "object", "required": ["url", "metadata"],
                           "properties": {"url": {"type": "string", "maxLength": 255},
                                          "metadata": {"type": "object"}}}),
}

# The properties DevStack's schema-image.json adds; Nova reads kernel_id and ramdisk_id.
CUSTOM_PROPERTIES: dict[str, Any] = {
    "kernel_id": _s(["null", "string"], "ID of image stored in Glance that should be used as the kernel when "
                                        "booting an AMI-style image.", pattern=UUID_PATTERN),
    "ramdisk_id": _s(["null", "string"], "ID of image stored in Glance that should be used as the ramdisk when "
                                         "booting an AMI-style image.", pattern=UUID_PATTERN),
    "instance_uuid": _s("string", "Metadata which can be used to record which instance this image is associated "
                                  "with. (Informational only, does not create an instance snapshot.)"),
    "architecture": _s("string", "Operating system architecture as specified in "
                                 "https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html"),
    "os_distro": _s("string", "Common name of operating system distribution as specified in "
                              "https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html"),
    "os_version": _s("string", "Operating system version as specified by the distributor."),
    "description": _s("string", "A human-readable string describing this image."),
    "cinder_encryption_key_id": _s("string", "Identifier in the OpenStack Key Management Service for the "
                                             "encryption key for the Block Storage Service to use when mounting "
                                             "a volume created from this image"),
    "cinder_encryption_key_deletion_policy": _s("string", "States the condition under which the Image Service "
                                                          "will delete the object associated with the "
                                                          "'cinder_encryption_key_id' image property.",
                                                enum=["on_image_deletion", "do_not_delete"]),
}

BASE_ATTRIBUTES = ("name", "visibility", "protected", "os_hidden", "owner", "container_format", "disk_format",
                   "min_ram", "min_disk", "tags", "id")


def image() -> dict[str, Any]:
    return {
        "name": "image",
        "properties": copy.deepcopy({**BASE_PROPERTIES, **CUSTOM_PROPERTIES}),
        "additionalProperties": {"type": "string"},
        "links": [{"rel": "self", "href": "{self}"}, {"rel": "enclosure", "href": "{file}"},
                  {"rel": "describedby", "href": "{schema}"}],
    }


def _collection(name: str, item: dict[str, Any], paged: bool = True) -> dict[str, Any]:
    props: dict[str, Any] = {name: {"type": "array", "items": item}, "schema": {"type": "string"}}
    links = [{"rel": "describedby", "href": "{schema}"}]
    if paged:
        props.update(first={"type": "string"}, next={"type": "string"})
        links = [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"}, *links]
    return {"name": name, "properties": props, "links": links}


def images() -> dict[str, Any]:
    return _collection("images", image())


def member() -> dict[str, Any]:
    return {"name": "member", "properties": {
        "created_at": _s("string", "Date and time of image member creation"),
        "image_id": _s("string", "An identifier for the image", pattern=UUID_PATTERN),
        "member_id": _s("string", "An identifier for the image member (tenantId)"),
        "schema": _ro("string", "An image member schema url"),
        "status": _s("string", "The status of this image member", enum=["pending", "accepted", "rejected"]),
        "updated_at": _s("string", "Date and time of last modification of image member"),
    }}


def members() -> dict[str, Any]:
    return _collection("members", member(), paged=False)


def task() -> dict[str, Any]:
    return {"name": "task", "properties": {
        "id": _s("string", "An identifier for the task", pattern=UUID_PATTERN),
        "type": _s("string", "The type of task represented by this content", enum=["import", "api_image_import"]),
        "status": _s("string", "The current status of this task",
                     enum=["pending", "processing", "success", "failure"]),
        "input": _s(["null", "object"], "The parameters required by task, JSON blob"),
        "result": _s(["null", "object"], "The result of current task, JSON blob"),
        "owner": _s(["null", "string"], "An identifier for the owner of this task"),
        "message": _s("string", "Human-readable informative message only included when appropriate"),
        "image_id": _s("string", "Image associated with the task"),
        "request_id": _s("string", "Human-readable informative request-id"),
        "user_id": _s("string", "User associated with the task"),
        "expires_at": _s(["null", "string"], "Datetime when this resource would be subject to removal"),
        "created_at": _s("string", "Datetime when this resource was created"),
        "updated_at": _s("string", "Datetime when this resource was updated"),
        "self": _s("string", "URI for this task"),
        "schema": _s("string", "URI for the schema describing this task"),
    }}


def tasks() -> dict[str, Any]:
    return _collection("tasks", task())


SCHEMAS = {"image": image, "images": images, "member": member, "members": members, "task": task, "tasks": tasks}

# Request bodies.
MEMBER_CREATE: dict[str, Any] = {"type": "object", "required": ["member"],
                                 "properties": {"member": {"type": "string", "minLength": 1, "maxLength": 255}}}
MEMBER_UPDATE: dict[str, Any] = {"type": "object", "required": ["status"],
                                 "properties": {"status": {"enum": ["pending", "accepted", "rejected"]}}}
IMPORT: dict[str, Any] = {
    "type": "object",
    "required": ["method"],
    "properties": {
        "method": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"},
                                                                           "uri": {"type": "string"}}},
        "stores": {"type": "array", "items": {"type": "string"}},
        "all_stores": {"type": "boolean"},
        "all_stores_must_succeed": {"type": "boolean"},
    },
}
