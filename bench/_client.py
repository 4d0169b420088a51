"""dsar's export API as a client sees it: `requestExport`, then GET the download link.

The download is read by a small HTTP/1.1 client on asyncio streams rather than httpx, so the
client costs almost nothing beside the server and it can tell apart the time to the response
headers and the time to the first byte of the ZIP itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

REQUEST_EXPORT = """
mutation Export($format: ExportFormat!) {
  requestExport(input: {format: $format, purpose: ACCESS}) {
    __typename
    ... on Export { id downloadUrl }
    ... on StrongerLoginRequired { acrValues maxAge }
    ... on ExportLimitReached { retryAfter }
    ... on InvalidExportRequest { message }
  }
}
"""
# The ZIP's end-of-central-directory record: a bundle that has it was finished.
_EOCD = b"PK\x05\x06"
_TAIL = 22 + 65535  # the record sits within the last 64 KiB (its comment) plus its own size
_ATTEMPTS = 10  # of `requestExport`, while it is shed with 503


class ExportRefused(Exception):
    """`requestExport` answered with something other than an export (the typename says what)."""


@dataclass(frozen=True, slots=True)
class Download:
    status: int
    headers_s: float  # request sent -> response headers read
    first_byte_s: float  # request sent -> first byte of the body
    total_s: float  # request sent -> last byte
    bytes: int
    complete: bool  # 200 and the ZIP's end record arrived


async def request_export(base_url: str, token: str, fmt: str) -> str:
    """A new ACCESS export of the token's subject; returns its download URL.

    A request shed at the in-flight limit (503 and Retry-After, as under scenario 7's load) is
    sent again after the wait it names, as a client told "try again in a moment" does.
    """
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        for _ in range(_ATTEMPTS):
            r = await client.post(
                "/graphql",
                json={"query": REQUEST_EXPORT, "variables": {"format": fmt.upper()}},
                headers={"authorization": f"Bearer {token}"},
            )
            if r.status_code != 503:
                break
            await asyncio.sleep(float(r.headers.get("retry-after", "1")))
    body = r.json()
    result = (body.get("data") or {}).get("requestExport") or {}
    if result.get("__typename") != "Export":
        raise ExportRefused(f"HTTP {r.status_code}: {result or body.get('errors')}")
    return urljoin(base_url + "/", str(result["downloadUrl"]))


async def download(url: str, token: str) -> Download:
    """GET `url` with the bearer token, dropping the body; timings from the request's start."""
    u = urlsplit(url)
    path = u.path + (f"?{u.query}" if u.query else "")
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection(u.hostname, u.port or 80, limit=1 << 22)
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {u.netloc}\r\nAuthorization: Bearer {token}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        await writer.drain()
        status = int((await reader.readline()).split()[1])
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        headers_s = time.perf_counter() - start
        first: float | None = None
        size = 0
        tail = b""
        async for data in _body(reader, headers):
            if first is None:
                first = time.perf_counter() - start
            size += len(data)
            tail = (tail + data)[-_TAIL:]
        total = time.perf_counter() - start
    finally:
        writer.close()
        await writer.wait_closed()
    return Download(
        status,
        headers_s,
        first if first is not None else total,
        total,
        size,
        status == 200 and _EOCD in tail,
    )


async def _body(reader: asyncio.StreamReader, headers: dict[str, str]) -> AsyncIterator[bytes]:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            line = await reader.readline()
            if not line.strip():
                return  # the server ended the response mid-way: `complete` stays False
            size = int(line.split(b";")[0], 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return
            try:
                yield await reader.readexactly(size)
                await reader.readexactly(2)
            except asyncio.IncompleteReadError as exc:
                yield exc.partial
                return
    elif "content-length" in headers:
        left = int(headers["content-length"])
        while left > 0:
            data = await reader.read(min(left, 1 << 20))
            if not data:
                return
            left -= len(data)
            yield data
    else:
        while data := await reader.read(1 << 20):
            yield data
