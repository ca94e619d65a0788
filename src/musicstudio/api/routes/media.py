"""Signed media downloads from local storage, with HTTP Range for seeking."""

from __future__ import annotations

import time

from fastapi import APIRouter
from fastapi.responses import FileResponse

from musicstudio.api.context import Context
from musicstudio.errors import NotFound, SignatureInvalid
from musicstudio.storage.base import StorageError
from musicstudio.storage.local import LocalStorage
from musicstudio.storage.media_types import media_type

router = APIRouter(tags=["media"])


@router.api_route("/media/{key:path}", methods=["GET", "HEAD"], include_in_schema=False)
async def get_media(
    key: str, ctx: Context, expires: str = "", kid: str = "", sig: str = ""
) -> FileResponse:
    """Serve the object when the URL's signature holds and has not expired."""
    storage = ctx.storage
    if not isinstance(storage, LocalStorage):
        # Other storages hand out their own URLs (S3: presigned); nothing is served here.
        raise NotFound("Media not found.")
    if not storage.signer.verify(storage.url_path(key), expires, kid, sig, now=time.time()):
        raise SignatureInvalid("This link is invalid or has expired. Request a fresh one.")
    try:
        path = storage.path_for(key)
    except StorageError as exc:
        raise NotFound("Media not found.") from exc
    if not path.is_file():
        raise NotFound("Media not found.")
    content_type = media_type(key)
    max_age = max(0, int(expires) - int(time.time()))
    return FileResponse(
        path, media_type=content_type, headers={"Cache-Control": f"private, max-age={max_age}"}
    )
