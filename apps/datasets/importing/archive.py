"""Image datasets arrive as an archive (zip or tar) holding one table and the image files.

The archive is inspected before anything is written: an entry with an absolute path or `..`, a
link or device, more entries or more decompressed bytes than the limits allow, an entry or the
whole expanding more than the allowed ratio, or anything but exactly one table is refused.

Sizes an archive declares can lie, so extraction counts the bytes it actually gets against the
same limits and stops at the first byte past them; each entry is written to a temporary file,
which the caller moves into place only once the whole entry has been read and checked.
"""

from __future__ import annotations

import os
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from apps.datasets.importing.readers import FileRefused

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")
# No SVG: it can carry script, and these files are served back to browsers.
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"}
TABLE_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


def is_archive(file_name: str) -> bool:
    return file_name.lower().endswith(ARCHIVE_SUFFIXES)


# Below this many bytes an entry or archive is never refused for its ratio: a small file of
# repeated bytes compresses far past any sensible ratio and costs nothing to unpack.
RATIO_FLOOR = 1024 * 1024
_CHUNK = 1024 * 1024


@dataclass
class ArchiveContents:
    table: str  # the table's name inside the archive
    table_format: str
    images: set[str]
    total_bytes: int
    limits: Limits
    # What the archive may still unpack: one budget for every extraction from it, so taking the
    # images and then the table cannot unpack the total twice.
    budget: _Budget = field(init=False)

    def __post_init__(self) -> None:
        self.budget = _Budget(self.limits)


@dataclass
class Limits:
    max_bytes: int  # decompressed bytes in all
    max_ratio: float  # decompressed bytes per byte of the archive, per entry and in all
    archive_bytes: int  # the archive's size on disk

    @property
    def total(self) -> int:
        return min(self.max_bytes, max(RATIO_FLOOR, int(self.max_ratio * self.archive_bytes)))

    def entry(self, compressed: int | None) -> int | None:
        """An entry's own limit, from its compressed size (None: only the total applies)."""
        if compressed is None:
            return None
        return max(RATIO_FLOOR, int(self.max_ratio * compressed))


def _check_name(name: str) -> str:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise FileRefused(
            f"The archive entry {name!r} has an absolute path; refused before anything was written."
        )
    if ".." in path.parts:
        raise FileRefused(
            f"The archive entry {name!r} climbs out with '..'; refused before anything was written."
        )
    return str(path)


def inspect_archive(
    path: str, *, max_bytes: int, max_entries: int, max_ratio: float
) -> ArchiveContents:
    """List and check every entry; raise FileRefused on the first thing that is not allowed."""
    limits = Limits(max_bytes=max_bytes, max_ratio=max_ratio, archive_bytes=os.path.getsize(path))
    files = _Sizes()
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                for info in archive.infolist():
                    name = _check_name(info.filename)
                    if (info.external_attr >> 16) & 0o170000 == 0o120000:
                        raise FileRefused(
                            f"The archive entry {name!r} is a link; refused before anything was written."
                        )
                    if not info.is_dir():
                        files[name] = info.file_size
                        entry_limit = limits.entry(info.compress_size)
                        if entry_limit is not None and info.file_size > entry_limit:
                            raise FileRefused(
                                f"The archive entry {name!r} expands {info.file_size:,} bytes from "
                                f"{info.compress_size:,}, more than {max_ratio:g} times; refused "
                                "before anything was written."
                            )
                        _limits(files, name, limits, max_entries)
        elif tarfile.is_tarfile(path):
            with tarfile.open(path) as archive:
                for member in archive:
                    name = _check_name(member.name)
                    if member.issym() or member.islnk():
                        raise FileRefused(
                            f"The archive entry {name!r} is a link; refused before anything was written."
                        )
                    if member.isdev() or member.isfifo():
                        raise FileRefused(
                            f"The archive entry {name!r} is not a regular file; refused."
                        )
                    if member.isfile():
                        files[name] = member.size
                        _limits(files, name, limits, max_entries)
        else:
            raise FileRefused("Not a zip or tar archive.")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise FileRefused(f"The archive cannot be read: {exc}") from None
    tables = [n for n in files if PurePosixPath(n).suffix.lower() in TABLE_SUFFIXES]
    if len(tables) != 1:
        found = ", ".join(sorted(tables)) or "none"
        raise FileRefused(
            f"The archive must hold exactly one table (.csv, .jsonl or .parquet); found {found}."
        )
    images = {n for n in files if PurePosixPath(n).suffix.lower() in IMAGE_SUFFIXES}
    table = tables[0]
    return ArchiveContents(
        table=table,
        table_format=TABLE_SUFFIXES[PurePosixPath(table).suffix.lower()],
        images=images,
        total_bytes=files.total,
        limits=limits,
    )


class _Sizes(dict):
    """Entry sizes with their running total."""

    total = 0


def _limits(files: _Sizes, name: str, limits: Limits, max_entries: int) -> None:
    files.total += files[name]
    if len(files) > max_entries:
        raise FileRefused(
            f"The archive has more than {max_entries:,} entries; refused before anything was written."
        )
    if files.total > limits.max_bytes:
        raise FileRefused(
            f"The archive decompresses to more than {limits.max_bytes:,} bytes; refused before anything was written."
        )
    if files.total > limits.total:
        raise FileRefused(
            f"The archive expands more than {limits.max_ratio:g} times its {limits.archive_bytes:,} "
            "bytes; refused before anything was written."
        )


def extract(path: str, contents: ArchiveContents, names: set[str], folder: str) -> Iterator:
    """(name, temporary path) for each named entry once it has been extracted whole, in archive
    order. Bytes are counted as they come, against each entry's limit and the archive's total,
    whatever the archive declares; FileRefused at the first byte past a limit, or for an entry
    whose data does not match what the archive says of it. A temporary file is removed when
    the caller moves on to the next entry, unless the caller has moved it away."""
    budget = contents.budget
    for index, (name, compressed, opener) in enumerate(_members(path, names)):
        target = Path(folder) / f"entry-{index}"
        try:
            with opener() as stream, target.open("wb") as out:
                budget.copy(stream, out, name, contents.limits.entry(compressed))
        except (zipfile.BadZipFile, zlib.error, EOFError, tarfile.TarError) as exc:
            target.unlink(missing_ok=True)
            raise FileRefused(
                f"The archive entry {name!r} cannot be read: its data does not match what the "
                f"archive declares ({exc})."
            ) from None
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        try:
            yield name, str(target)
        finally:
            target.unlink(missing_ok=True)


class _Budget:
    """Decompressed bytes the archive may still produce."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.left = limits.total

    def copy(self, stream, out, name: str, entry_limit: int | None) -> None:
        written = 0
        while True:
            allowed = self.left if entry_limit is None else min(self.left, entry_limit - written)
            # One byte past what is allowed is enough to know a limit was crossed.
            chunk = stream.read(min(_CHUNK, allowed + 1))
            if not chunk:
                return
            if len(chunk) > allowed:
                raise FileRefused(
                    f"The archive entry {name!r} expands past the limit (more than "
                    f"{self.limits.max_ratio:g} times its compressed size, or more than "
                    f"{self.limits.total:,} bytes in all); refused."
                )
            out.write(chunk)
            written += len(chunk)
            self.left -= len(chunk)


def _members(path: str, names: set[str]):
    """(name, compressed size or None, opener) of the named regular entries, in archive order."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                name = str(PurePosixPath(info.filename.replace("\\", "/")))
                if name in names and not info.is_dir():
                    yield name, info.compress_size, lambda info=info: archive.open(info)
    else:
        with tarfile.open(path) as archive:
            for member in archive:
                name = str(PurePosixPath(member.name))
                if member.isfile() and name in names:
                    yield name, None, lambda member=member: _tar_stream(archive, member)


def _tar_stream(archive: tarfile.TarFile, member: tarfile.TarInfo):
    stream = archive.extractfile(member)
    if stream is None:
        raise FileRefused(f"The archive entry {member.name!r} is not a file.")
    return stream
