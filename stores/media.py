"""A media store: recordings as files in a folder per subject (`<root>/<subject id>/<file>`)."""

from __future__ import annotations

import asyncio
import mimetypes
import re
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

Row = dict[str, Any]

# File names are checked before any path is built, so a name can never leave its folder.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


def safe_name(name: str) -> bool:
    return bool(_SAFE_NAME.match(name)) and ".." not in name


class MediaStore:
    kind = "media"

    def __init__(self, name: str, root: Path, categories: Sequence[str]) -> None:
        self.name = name
        self.root = root
        self.categories = tuple(categories)

    async def ping(self) -> bool:
        return await asyncio.to_thread(self.root.is_dir)

    def _folder(self, subject_id: UUID) -> Path:
        return self.root / str(subject_id)

    def _list(self, subject_id: UUID) -> list[Row]:
        folder = self._folder(subject_id)
        if not folder.is_dir():
            return []
        rows = []
        for path in sorted(folder.iterdir()):
            if not path.is_file() or not safe_name(path.name):
                continue
            stat = path.stat()
            rows.append(
                {
                    "file_name": path.name,
                    "media_type": mimetypes.guess_type(path.name)[0] or "application/octet-stream",
                    "bytes": stat.st_size,
                    "recorded_at": datetime.fromtimestamp(stat.st_mtime, UTC),
                }
            )
        return rows

    async def files(self, subject_ids: Sequence[UUID]) -> dict[UUID, list[Row]]:
        return {sid: await asyncio.to_thread(self._list, sid) for sid in subject_ids}

    async def counts(self, subject_ids: Sequence[UUID]) -> dict[UUID, dict[str, int]]:
        files = await self.files(subject_ids)
        return {sid: {"recordings": len(rows)} if rows else {} for sid, rows in files.items()}

    def path_of(self, subject_id: UUID, file_name: str) -> Path | None:
        if not safe_name(file_name):
            return None
        path = self._folder(subject_id) / file_name
        return path if path.is_file() else None

    async def read(self, path: Path, chunk: int = 256 * 1024) -> AsyncIterator[bytes]:
        with path.open("rb") as f:
            while data := await asyncio.to_thread(f.read, chunk):
                yield data
