"""Project > Object Store > Containers: containers and their objects through the object-store endpoint of the
catalog (Swift's v1 API): create and delete containers, public access by the read ACL, pseudo-folders by prefix
and delimiter, upload, download and delete objects."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from tinystack.dashboard.client import ApiError
from tinystack.dashboard.web import FormError, Page, api, back, form, redirect, render, required, session

BASE = "/project/containers/"
SERVICE = "object-store"
# Horizon's "Public Access": anyone may read the objects and list the container, without a token.
PUBLIC_ACL = ".r:*,.rlistings"
DELIMITER = "/"


def container_name(name: str) -> str:
    """A container name Swift takes: not empty, no slash, at most 256 bytes."""
    name = name.strip()
    if not name:
        raise FormError("Container Name is required.")
    if "/" in name:
        raise FormError("Container Name must not contain a slash (\"/\").")
    if len(name.encode()) > 256:
        raise FormError("Container Name must be at most 256 bytes.")
    return name


def object_name(name: str) -> str:
    """An object name Swift takes: not empty, at most 1024 bytes; a leading slash would make an empty folder."""
    if not name or not name.strip():
        raise FormError("Object Name is required.")
    if name.startswith("/"):
        raise FormError("Object Name must not start with a slash (\"/\").")
    if len(name.encode()) > 1024:
        raise FormError("Object Name must be at most 1024 bytes.")
    return name


def folder_prefix(prefix: str) -> str:
    """A pseudo-folder's prefix as listings use it: empty at the top, else ending with the delimiter."""
    prefix = prefix.lstrip("/")
    return prefix if not prefix or prefix.endswith(DELIMITER) else prefix + DELIMITER


def is_public(read_acl: str) -> bool:
    return ".r:*" in [e.strip() for e in read_acl.split(",")]


def crumbs(prefix: str) -> list[tuple[str, str]]:
    """The folders above a prefix, each with its own prefix: ``a/b/`` -> [("a", "a/"), ("b", "a/b/")]."""
    out, here = [], ""
    for part in [p for p in prefix.split(DELIMITER) if p]:
        here += part + DELIMITER
        out.append((part, here))
    return out


def _path(container: str, obj: str = "") -> str:
    return "/" + quote(container, safe="") + ("/" + quote(obj, safe="/") if obj else "")


def _page(container: str, prefix: str = "") -> str:
    return BASE + quote(container, safe="") + "/" + (f"?prefix={quote(prefix, safe='')}" if prefix else "")


async def index(request: web.Request) -> web.StreamResponse:
    a = api(request)
    _, _, body = await a.call("GET", SERVICE, "", params={"format": "json"})
    return render(request, "containers.html", title="Containers", containers=body or [],
                  endpoint=a.url(SERVICE))


async def create(request: web.Request) -> web.StreamResponse:
    fields = await form(request)
    name = container_name(fields.get("name", ""))
    headers = {"X-Container-Read": PUBLIC_ACL} if fields.get("public") == "on" else {}
    a = api(request)
    # Creating is a PUT that also succeeds on an existing container: ask first, so a name taken is said so.
    try:
        await a.fetch("HEAD", SERVICE, _path(name))
    except ApiError as exc:
        if exc.status != 404:
            raise
    else:
        raise FormError(f"A container named {name!r} already exists.")
    await a.fetch("PUT", SERVICE, _path(name), headers=headers)
    session(request).flash("success", f"Created container {name}.")
    raise redirect(_page(name))


async def detail(request: web.Request) -> web.StreamResponse:
    """One container's folder: the objects and pseudo-folders under ``?prefix=``, one level deep."""
    container = request.match_info["container"]
    prefix = folder_prefix(request.query.get("prefix", ""))
    a = api(request)
    _, raw_headers, _ = await a.fetch("HEAD", SERVICE, _path(container))
    headers = {k.lower(): v for k, v in raw_headers.items()}
    params = {"format": "json", "delimiter": DELIMITER}
    if prefix:
        params["prefix"] = prefix
    _, _, listing = await a.call("GET", SERVICE, _path(container), params=params)
    folders = [item["subdir"] for item in listing or [] if "subdir" in item]
    objects = [item for item in listing or [] if "name" in item and item["name"] != prefix]
    read_acl = headers.get("x-container-read", "")
    return render(request, "container_detail.html", title=f"Container: {container}", container=container,
                  prefix=prefix, crumbs=crumbs(prefix), folders=folders, objects=objects, public=is_public(read_acl),
                  read_acl=read_acl, count=headers.get("x-container-object-count", "0"),
                  bytes_used=headers.get("x-container-bytes-used", "0"),
                  public_url=a.url(SERVICE) + _path(container), quoted=quote(container, safe=""))


async def delete(request: web.Request) -> web.StreamResponse:
    await form(request)
    container = request.match_info["container"]
    await api(request).fetch("DELETE", SERVICE, _path(container))
    session(request).flash("success", f"Deleted container {container}.")
    raise redirect(BASE)


async def access(request: web.Request) -> web.StreamResponse:
    """Make Public / Make Private: the container's read ACL set to ``.r:*,.rlistings`` or removed."""
    fields = await form(request)
    container = request.match_info["container"]
    if fields.get("public") not in ("on", "off"):
        raise FormError("Choose public or private access.")
    public = fields["public"] == "on"
    headers = {"X-Container-Read": PUBLIC_ACL} if public else {"X-Remove-Container-Read": "x"}
    await api(request).fetch("POST", SERVICE, _path(container), headers=headers)
    session(request).flash("success", f"Container {container} is now {'public' if public else 'private'}.")
    raise redirect(back(request, _page(container)))


async def upload(request: web.Request) -> web.StreamResponse:
    """Upload Object: the file input's content under the current folder, by the file's name or the one given."""
    container = request.match_info["container"]
    data = await request.post()
    fields = await form(request)
    upload_file = data.get("file")
    if not isinstance(upload_file, web.FileField):
        raise FormError("Choose a file to upload.")
    prefix = folder_prefix(fields.get("prefix", ""))
    name = object_name(prefix + (fields.get("name", "").strip() or upload_file.filename or ""))
    content = upload_file.file.read()
    headers = {"Content-Type": upload_file.content_type or "application/octet-stream"}
    await api(request).fetch("PUT", SERVICE, _path(container, name), headers=headers, data=content)
    session(request).flash("success", f"Uploaded {name}.")
    raise redirect(_page(container, prefix))


async def create_folder(request: web.Request) -> web.StreamResponse:
    """Create Folder: as Horizon, an empty object whose name ends with the delimiter."""
    fields = await form(request)
    container = request.match_info["container"]
    required(fields, "name")
    name = fields["name"].strip().strip(DELIMITER)
    if DELIMITER in name or not name:
        raise FormError("Folder Name must not contain a slash (\"/\").")
    prefix = folder_prefix(fields.get("prefix", ""))
    full = object_name(prefix + name + DELIMITER)
    await api(request).fetch("PUT", SERVICE, _path(container, full), headers={"Content-Type": "application/directory"},
                             data=b"")
    session(request).flash("success", f"Created folder {full}.")
    raise redirect(_page(container, full))


async def download(request: web.Request) -> web.StreamResponse:
    container, name = request.match_info["container"], request.match_info["name"]
    _, _, content = await api(request).fetch("GET", SERVICE, _path(container, name))
    filename = name.rsplit(DELIMITER, 1)[-1] or "download"
    # The name as an RFC 5987 value: any character, and no way out of the header.
    disposition = f"attachment; filename*=UTF-8''{quote(filename, safe='')}"
    return web.Response(body=content, headers={"Content-Disposition": disposition},
                        content_type="application/octet-stream")


async def delete_object(request: web.Request) -> web.StreamResponse:
    fields = await form(request)
    container = request.match_info["container"]
    name = object_name(fields.get("object", ""))
    a = api(request)
    if name.endswith(DELIMITER):
        # A folder: as Horizon, only an empty one; its marker object goes (a folder made only by the names of
        # the objects in it has none).
        _, _, inside = await a.call("GET", SERVICE, _path(container), params={"format": "json", "prefix": name,
                                                                              "limit": "2"})
        if any(item.get("name") != name for item in inside or []):
            raise FormError(f"The folder {name} is not empty: delete its objects first.")
        try:
            await a.fetch("DELETE", SERVICE, _path(container, name))
        except ApiError as exc:
            if exc.status != 404:
                raise
    else:
        await a.fetch("DELETE", SERVICE, _path(container, name))
    session(request).flash("success", f"Deleted {name}.")
    parent = name.rstrip(DELIMITER).rpartition(DELIMITER)[0]
    raise redirect(back(request, _page(container, folder_prefix(parent))))


PAGES = [
    Page("GET", BASE, index),
    Page("POST", BASE + "create/", create),
    Page("GET", BASE + "{container}/", detail),
    Page("POST", BASE + "{container}/delete/", delete),
    Page("POST", BASE + "{container}/access/", access),
    Page("POST", BASE + "{container}/upload/", upload),
    Page("POST", BASE + "{container}/folder/", create_folder),
    Page("POST", BASE + "{container}/delete_object/", delete_object),
    Page("GET", BASE + "{container}/object/{name:.+}", download),
]
