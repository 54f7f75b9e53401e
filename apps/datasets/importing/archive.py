"""Image datasets arrive as an archive (zip or tar) holding one table and the image files.

The archive is inspected before anything is written: an entry with an absolute path or `..`, a
link or device, more entries or more decompressed bytes than the limits allow, or anything but
exactly one table is refused.
"""

from __future__ import annotations

import tarfile
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO

from apps.datasets.importing.readers import FileRefused

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")
# No SVG: it can carry script, and these files are served back to browsers.
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"}
TABLE_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


def is_archive(file_name: str) -> bool:
    return file_name.lower().endswith(ARCHIVE_SUFFIXES)


@dataclass
class ArchiveContents:
    table: str  # the table's name inside the archive
    table_format: str
    images: set[str]
    total_bytes: int


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


def inspect_archive(path: str, *, max_bytes: int, max_entries: int) -> ArchiveContents:
    """List and check every entry; raise FileRefused on the first thing that is not allowed."""
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
                        _limits(files, name, max_bytes, max_entries)
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
                        _limits(files, name, max_bytes, max_entries)
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
    )


class _Sizes(dict):
    """Entry sizes with their running total."""

    total = 0


def _limits(files: _Sizes, name: str, max_bytes: int, max_entries: int) -> None:
    files.total += files[name]
    if len(files) > max_entries:
        raise FileRefused(
            f"The archive has more than {max_entries:,} entries; refused before anything was written."
        )
    if files.total > max_bytes:
        raise FileRefused(
            f"The archive decompresses to more than {max_bytes:,} bytes; refused before anything was written."
        )


@contextmanager
def open_member(path: str, name: str):
    """A binary stream of one entry (the archive was inspected first)."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive, archive.open(name) as stream:
            yield stream
    else:
        with tarfile.open(path) as archive:
            stream: IO[bytes] | None = archive.extractfile(name)
            if stream is None:
                raise FileRefused(f"The archive entry {name!r} is not a file.")
            with stream:
                yield stream


def iter_images(path: str, images: set[str]):
    """(name, stream) for each image entry, in archive order."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                name = str(PurePosixPath(info.filename.replace("\\", "/")))
                if name in images:
                    with archive.open(info) as stream:
                        yield name, stream
    else:
        with tarfile.open(path) as archive:
            for member in archive:
                if member.isfile() and str(PurePosixPath(member.name)) in images:
                    stream = archive.extractfile(member)
                    if stream is not None:
                        with stream:
                            yield str(PurePosixPath(member.name)), stream
