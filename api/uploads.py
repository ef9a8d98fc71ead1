"""Uploads: request bodies read whole, within the gateway's size limit."""

from __future__ import annotations

from fastapi import Request

from api.errors import PayloadTooLarge


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it is known to exceed `limit` bytes: by
    its declared length before anything is read, else while it streams in."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"upload is {declared} bytes; the limit is {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"upload exceeds the limit of {limit} bytes")
    return bytes(body)
