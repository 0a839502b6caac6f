"""The image service's settings, read from the ``[image]`` section with defaults that suit one machine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tinystack.config import Config

GiB = 1024**3

# The keys ``[image]`` accepts and their defaults (sizes in bytes).
DEFAULTS: dict[str, str] = {
    # Comma-separated ids; ``id:kind`` picks a driver other than ``file`` (``swift``: the cloud's object storage).
    "stores": "file,swift:swift",
    "default_store": "",  # empty: the first store
    "store_dirs": "",  # ``id=/path,...``; default ``<state_dir>/images/<id>``
    # swift stores: the container in the service project's account (segments go to ``<container>_segments``);
    # data of a known size up to large_object_size is one object, else segments of chunk_size and a manifest.
    "swift_store_container": "glance",
    "swift_store_large_object_size": str(5 * GiB),
    "swift_store_large_object_chunk_size": str(200 * 1024**2),
    "image_size_cap": str(1024 * GiB),
    "quota_image_count_total": "100",
    "quota_image_size_total": str(1000 * GiB),
    "quota_image_count_uploading": "10",
    "quota_image_stage_total": str(1000 * GiB),
    "image_member_quota": "128",
    "image_property_quota": "128",
    "image_tag_quota": "128",
    "limit_param_default": "25",
    "api_limit_max": "1000",
    "enabled_import_methods": "glance-direct,web-download,copy-image",
    # web-download: hosts (names or addresses) fetched from even on private addresses or other ports; every
    # other URL must be http(s) on an allowed port and resolve only to public addresses.
    "web_download_allowed_hosts": "",
    "web_download_allowed_ports": "80,443",
    "web_download_timeout": "600",  # seconds a whole web-download may take
    "require_image_format_match": "false",
    "property_protection_file": "",
    "property_protection_rule_format": "roles",
    "upload_stale_after": "300",  # seconds without progress before an upload counts as abandoned
    # This API node's cache of image data (docs/image.md); a max size of 0 turns it and /v2/cache off.
    "image_cache_dir": "",  # default <state_dir>/images/cache
    "image_cache_max_size": str(10 * GiB),
}


@dataclass(frozen=True)
class StoreSpec:
    id: str
    kind: str
    path: Path


@dataclass(frozen=True)
class ImageSettings:
    stores: tuple[StoreSpec, ...]
    default_store: str
    staging_dir: Path
    image_size_cap: int
    quota_image_count_total: int
    quota_image_size_total: int
    quota_image_count_uploading: int
    quota_image_stage_total: int
    image_member_quota: int
    image_property_quota: int
    image_tag_quota: int
    limit_param_default: int
    api_limit_max: int
    enabled_import_methods: tuple[str, ...]
    require_image_format_match: bool
    property_protection_file: Path | None
    property_protection_rule_format: str
    upload_stale_after: float
    web_download_allowed_hosts: tuple[str, ...] = ()
    web_download_allowed_ports: tuple[int, ...] = (80, 443)
    web_download_timeout: float = 600.0
    swift_store_container: str = "glance"
    swift_store_large_object_size: int = 5 * GiB
    swift_store_large_object_chunk_size: int = 200 * 1024**2
    image_cache_dir: Path | None = None
    image_cache_max_size: int = 0


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def load(config: Config) -> ImageSettings:
    """Settings from ``config``; keys missing from its ``[image]`` section take their defaults."""
    raw = {**DEFAULTS, **config.values.get("image", {})}
    unknown = set(raw) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown setting(s) in [image]: {', '.join(sorted(unknown))}")
    base = config.state_dir / "images"
    dirs = dict(item.split("=", 1) for item in _split(raw["store_dirs"]))
    stores = []
    for item in _split(raw["stores"]):
        store_id, _, kind = item.partition(":")
        if not store_id or store_id.startswith("os_glance_") or store_id == "staging":
            raise ValueError(f"[image] stores: invalid store id {store_id!r}")
        stores.append(StoreSpec(store_id, kind or "file", Path(dirs.get(store_id, base / store_id))))
    if not stores:
        raise ValueError("[image] stores: at least one store is required")
    default = raw["default_store"] or stores[0].id
    if default not in {s.id for s in stores}:
        raise ValueError(f"[image] default_store {default!r} is not one of the stores")
    methods = tuple(_split(raw["enabled_import_methods"]))
    unknown_methods = set(methods) - {"glance-direct", "web-download", "copy-image"}
    if unknown_methods:
        raise ValueError(f"[image] enabled_import_methods: unknown method(s) {', '.join(sorted(unknown_methods))}")
    rule_format = raw["property_protection_rule_format"].strip().lower()
    if rule_format not in ("roles", "policies"):
        raise ValueError("[image] property_protection_rule_format must be 'roles' or 'policies'")
    return ImageSettings(
        stores=tuple(stores),
        default_store=default,
        staging_dir=base / "staging",
        image_size_cap=int(raw["image_size_cap"]),
        quota_image_count_total=int(raw["quota_image_count_total"]),
        quota_image_size_total=int(raw["quota_image_size_total"]),
        quota_image_count_uploading=int(raw["quota_image_count_uploading"]),
        quota_image_stage_total=int(raw["quota_image_stage_total"]),
        image_member_quota=int(raw["image_member_quota"]),
        image_property_quota=int(raw["image_property_quota"]),
        image_tag_quota=int(raw["image_tag_quota"]),
        limit_param_default=int(raw["limit_param_default"]),
        api_limit_max=int(raw["api_limit_max"]),
        enabled_import_methods=methods,
        require_image_format_match=raw["require_image_format_match"].strip().lower() in ("1", "true", "yes", "on"),
        property_protection_file=Path(raw["property_protection_file"]) if raw["property_protection_file"] else None,
        property_protection_rule_format=rule_format,
        upload_stale_after=float(raw["upload_stale_after"]),
        web_download_allowed_hosts=tuple(h.lower() for h in _split(raw["web_download_allowed_hosts"])),
        web_download_allowed_ports=tuple(int(p) for p in _split(raw["web_download_allowed_ports"])),
        web_download_timeout=float(raw["web_download_timeout"]),
        swift_store_container=_container(raw["swift_store_container"]),
        swift_store_large_object_size=_positive("swift_store_large_object_size", raw),
        swift_store_large_object_chunk_size=_positive("swift_store_large_object_chunk_size", raw),
        image_cache_dir=Path(raw["image_cache_dir"]) if raw["image_cache_dir"] else base / "cache",
        image_cache_max_size=max(0, int(raw["image_cache_max_size"])),
    )


def _container(name: str) -> str:
    name = name.strip()
    if not name or "/" in name or len(name) > 200:
        raise ValueError(f"[image] swift_store_container: invalid container name {name!r}")
    return name


def _positive(key: str, raw: dict[str, str]) -> int:
    value = int(raw[key])
    if value < 1:
        raise ValueError(f"[image] {key} must be at least 1")
    return value
