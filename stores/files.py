"""A files store: a folder of the company's files, found per person by a pattern of their keys.

`pattern = "calls/{user_id}/*"` lists, for each of the person's `user_id` values, the files under
`calls/<value>/` whose names match. Nothing here ever leaves the store's folder:
- a key value that is not a plain name (a slash, `..`, a control character) is never used;
- no symbolic link is followed, at any level: every directory is listed with `lstat`, and files
  are opened with `O_NOFOLLOW`, so a link planted in a folder cannot point the export at
  `/etc/passwd` or at another person's files;
- a file whose name could not travel safely (in a ZIP member name or an HTTP header) is not
  dropped silently: it is counted as held but not included, with the reason.
"""

from __future__ import annotations

import asyncio
import fnmatch
import mimetypes
import os
import re
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from stores.config import CategoryConfig, StoresConfig
from stores.mapping import Person, Row

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,199}")
UNSAFE_NAME = "its name holds characters that cannot be carried safely in a file name"
LINK = "it is a link to somewhere else, which is never followed"
DUPLICATE = "another file of the same name is included"
HARD_LINK = "it is also stored under another name, possibly outside this person's folder"


def safe_name(name: str) -> bool:
    """A plain file or folder name: fullmatch, so a trailing newline is refused too."""
    return bool(_SAFE_NAME.fullmatch(name)) and ".." not in name


@dataclass(slots=True)
class Listing:
    """The person's files of one category, and what was found but not included."""

    rows: list[Row] = field(default_factory=list)
    paths: dict[str, str] = field(default_factory=dict)  # file name -> path under the root
    refused: dict[str, int] = field(default_factory=dict)  # reason -> how many


class FilesStore:
    kind = "files"

    def __init__(self, name: str, root: Path, config: StoresConfig) -> None:
        self.name = name
        self.root = root
        self._real_root = os.path.realpath(root)
        self.categories: dict[str, CategoryConfig] = {
            k: c for k, c in config.categories.items() if c.store == name
        }
        self.statements = 0

    async def close(self) -> None:
        return None

    async def ping(self) -> bool:
        return await asyncio.to_thread(self.root.is_dir)

    async def listing(self, key: str, person: Person) -> Listing:
        return await asyncio.to_thread(self._list, self.categories[key], person)

    async def counts(self, person: Person) -> dict[str, int]:
        out = {}
        for key in self.categories:
            listing = await self.listing(key, person)
            if listing.rows:
                out[key] = len(listing.rows)
        return out

    def _list(self, mapped: CategoryConfig, person: Person) -> Listing:
        listing = Listing()
        for relative in _expand(mapped.pattern, person):
            self._walk(self.root, relative.split("/"), "", listing)
        listing.rows.sort(key=lambda r: (r["recorded_at"], r["file_name"]))
        return listing

    def _walk(self, folder: Path, parts: list[str], under: str, listing: Listing) -> None:
        head, rest = parts[0], parts[1:]
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return
        for entry in sorted(entries, key=lambda e: e.name):
            if not fnmatch.fnmatchcase(entry.name, head):
                continue
            info = entry.stat(follow_symlinks=False)
            path = f"{under}/{entry.name}" if under else entry.name
            if stat.S_ISLNK(info.st_mode):
                _refuse(listing, LINK)
            elif rest:
                if stat.S_ISDIR(info.st_mode):
                    self._walk(folder / entry.name, rest, path, listing)
            elif stat.S_ISREG(info.st_mode):
                if not safe_name(entry.name):
                    _refuse(listing, UNSAFE_NAME)
                elif info.st_nlink != 1:
                    _refuse(listing, HARD_LINK)
                elif entry.name in listing.paths:
                    _refuse(listing, DUPLICATE)
                else:
                    listing.paths[entry.name] = path
                    listing.rows.append(_row(entry.name, info))

    async def open_file(self, key: str, person: Person, file_name: str) -> Row | None:
        """The row of one of the person's files, by name; None if they have no such file."""
        if not safe_name(file_name):
            return None
        listing = await self.listing(key, person)
        path = listing.paths.get(file_name)
        if path is None:
            return None
        return next(r | {"_path": path} for r in listing.rows if r["file_name"] == file_name)

    async def read(self, relative: str, chunk: int = 256 * 1024) -> AsyncIterator[bytes]:
        """A file's bytes; refuses (OSError) a link at any step, anything but a plain file, and
        a file with another name elsewhere (a hard link can reach outside the folder)."""
        fd = await asyncio.to_thread(self._open, relative)
        with os.fdopen(fd, "rb") as f:
            while data := await asyncio.to_thread(f.read, chunk):
                yield data

    def _open(self, relative: str) -> int:
        parts = relative.split("/")
        if not all(safe_name(p) or _pattern_part(p) for p in parts):
            raise PermissionError("a path outside the store's folder")
        # Each folder is opened without following links, relative to the one before it, so a
        # link swapped in after the listing is refused too (no time-of-check gap).
        flags = os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(self.root, flags | os.O_DIRECTORY)
        try:
            for part in parts[:-1]:
                nxt = os.open(part, flags | os.O_DIRECTORY, dir_fd=fd)
                os.close(fd)
                fd = nxt
            # Non-blocking: a FIFO swapped in after the listing would otherwise hang the open.
            file = os.open(parts[-1], flags | os.O_NONBLOCK, dir_fd=fd)
        finally:
            os.close(fd)
        info = os.fstat(file)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1 or not self._inside(file):
            os.close(file)
            raise PermissionError("not a plain file of the store's own")
        os.set_blocking(file, True)
        return file

    def _inside(self, fd: int) -> bool:
        """Where the open file really is (Linux names it under /proc) stays inside the folder:
        a second check behind the link-free walk above, which should already ensure it."""
        where = f"/proc/self/fd/{fd}"
        if not os.path.islink(where):
            return True  # no /proc here: the walk above is the check
        return os.path.realpath(where).startswith(self._real_root + os.sep)


def _pattern_part(part: str) -> bool:
    # Folder names taken from key values were checked by `_expand`; other folder names come
    # from the listing itself and are plain directory entries.
    return bool(part) and "/" not in part and part not in (".", "..") and "\x00" not in part


def _expand(pattern: str, person: Person) -> list[str]:
    """The pattern with each combination of the person's key values; unsafe values never used."""
    out = [pattern]
    for key in CategoryConfig("", "", pattern=pattern).pattern_keys:
        values = [v for v in person.of(key) if safe_name(v)]
        out = [p.replace("{" + key + "}", v) for p in out for v in values]
    return out


def _refuse(listing: Listing, reason: str) -> None:
    listing.refused[reason] = listing.refused.get(reason, 0) + 1


def _row(name: str, info: os.stat_result) -> Row:
    return {
        "file_name": name,
        "media_type": mimetypes.guess_type(name)[0] or "application/octet-stream",
        "bytes": info.st_size,
        "recorded_at": datetime.fromtimestamp(info.st_mtime, UTC),
    }
