"""Archive bombs, archives that lie about their sizes, upload limits, and the sweep that removes
abandoned uploads and refused import files."""

from __future__ import annotations

import os
import struct
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management.base import CommandError
from django.utils import timezone

from apps.datasets import services
from apps.datasets.importing.archive import (
    RATIO_FLOOR,
    ArchiveContents,
    Limits,
    extract,
    inspect_archive,
)
from apps.datasets.importing.readers import FileRefused
from apps.datasets.models import ImportJob, JobStatus, Upload
from tests.datasets.conftest import snapshot
from tests.datasets.test_archives import TABLE, make_zip, media_files, pictures, png, run

pytestmark = pytest.mark.django_db(transaction=True)
__all__ = ["pictures"]  # the fixture: an image dataset the archives below are imported into


def test_an_entry_expanding_past_the_ratio_is_refused(team, pictures, tmp_path):
    bomb = make_zip(
        tmp_path / "bomb.zip",
        {
            "table.csv": TABLE.encode(),
            "img/red.png": b"\0" * (3 * RATIO_FLOOR),
            "img/blue.png": b"",
        },
    )
    assert os.path.getsize(bomb) < 3 * RATIO_FLOOR / 100  # small on disk, large unpacked
    before, files = snapshot(), media_files()
    with pytest.raises(CommandError, match=r"'img/red.png' expands .* more than 100 times"):
        run(team, bomb)
    assert snapshot() == before and media_files() == files


def test_an_archive_expanding_past_the_ratio_in_all_is_refused(team, pictures, tmp_path):
    # Each entry is under the size from which an entry's own ratio counts; together they are not.
    entries = {f"img/{i}.png": b"\0" * (RATIO_FLOOR // 2) for i in range(40)}
    bomb = make_zip(tmp_path / "many.zip", {"table.csv": TABLE.encode(), **entries})
    before, files = snapshot(), media_files()
    with pytest.raises(CommandError, match="expands more than 100 times its"):
        run(team, bomb)
    assert snapshot() == before and media_files() == files


def test_the_ratio_is_a_setting(team, tmp_path, settings):
    settings.LOUPE_ARCHIVE_MAX_RATIO = 10_000
    table = b"id,image,label\na,img/red.png,warm\n"
    archive = make_zip(
        tmp_path / "ok.zip", {"table.csv": table, "img/red.png": b"\0" * (3 * RATIO_FLOOR)}
    )
    run(team, archive)


def lie_about_size(path: Path, name: str, declared: int) -> Path:
    """Rewrite the central directory's uncompressed size of one entry."""
    data = bytearray(path.read_bytes())
    at = data.find(b"PK\x01\x02")
    while at != -1:
        name_length = struct.unpack_from("<H", data, at + 28)[0]
        if data[at + 46 : at + 46 + name_length] == name.encode():
            struct.pack_into("<I", data, at + 24, declared)
            path.write_bytes(bytes(data))
            return path
        at = data.find(b"PK\x01\x02", at + 4)
    raise AssertionError(f"no central directory entry {name}")


def test_a_zip_lying_about_an_entry_size_leaves_no_file_behind(team, pictures, tmp_path):
    archive = make_zip(
        tmp_path / "liar.zip",
        {"table.csv": TABLE.encode(), "img/red.png": png("red"), "img/blue.png": png("blue") * 50},
    )
    lie_about_size(archive, "img/blue.png", 10)
    with zipfile.ZipFile(archive) as z:
        assert z.getinfo("img/blue.png").file_size == 10  # what the archive now declares
    before, files = snapshot(), media_files()
    with pytest.raises(CommandError, match=r"'img/blue.png' cannot be read"):
        run(team, archive)
    # Neither the image stored before it nor an empty file of the entry that failed stays.
    assert snapshot() == before and media_files() == files
    job = ImportJob.objects.get(file_name="liar.zip")
    assert job.status == JobStatus.FAILED and "Import failed" not in job.error


def test_extraction_counts_the_bytes_it_gets_and_stops_past_the_limit(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {"t.csv": b"id\n", "img/a.png": b"\0" * 50_000})
    contents = inspect_archive(
        str(archive), max_bytes=10**9, max_entries=10, max_ratio=100
    )  # what the archive declares passes
    # The same archive held to a total of 1,000 bytes while unpacking.
    tight = ArchiveContents(
        table=contents.table,
        table_format=contents.table_format,
        images=contents.images,
        total_bytes=contents.total_bytes,
        limits=Limits(max_bytes=1000, max_ratio=100, archive_bytes=os.path.getsize(archive)),
    )
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(FileRefused, match="'img/a.png' expands past the limit"):
        for _name, _path in extract(str(archive), tight, {"img/a.png"}, str(work)):
            pass
    assert list(work.iterdir()) == []  # the partial entry is gone


def test_an_upload_declaring_more_than_the_limit_is_refused_before_anything_is_written(
    team, tmp_path, api_as, settings
):
    from tests.datasets.conftest import import_into

    dataset = import_into(team, _write(tmp_path / "d.csv", "id,text,label\na,hi,cat\n"))
    settings.LOUPE_IMPORT_MAX_BYTES = 1000
    settings.LOUPE_UPLOAD_DIR = tmp_path / "uploads"
    client = api_as(team.user("owner"))
    response = client.post(
        f"/api/datasets/{dataset.pk}/uploads/",
        {"file_name": "huge.csv", "size": 10**15},
        format="json",
    )
    assert response.status_code == 400 and "LOUPE_IMPORT_MAX_BYTES" in response.json()["size"][0]
    assert not Upload.objects.exists() and not Path(settings.LOUPE_UPLOAD_DIR).exists()
    upload = client.post(
        f"/api/datasets/{dataset.pk}/uploads/", {"file_name": "s.csv", "size": 10}, format="json"
    ).json()
    chunk = client.put(
        f"/api/datasets/{dataset.pk}/uploads/{upload['id']}/",
        b"x" * 20,
        content_type="application/octet-stream",
        headers={"Content-Range": "bytes 0-19/10"},
    )
    assert chunk.status_code == 400 and "past the declared size" in chunk.json()["size"][0]
    assert Upload.objects.get(pk=upload["id"]).received == 0
    assert (Path(settings.LOUPE_UPLOAD_DIR) / f"{upload['id']}.part").read_bytes() == b""


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _age(path: Path, hours: float) -> None:
    then = (timezone.now() - timedelta(hours=hours)).timestamp()
    os.utime(path, (then, then))


def test_the_sweep_removes_abandoned_uploads_and_refused_import_files(team, tmp_path, settings):
    settings.LOUPE_UPLOAD_DIR = tmp_path / "uploads"
    from apps.datasets.tasks import purge_uploads
    from tests.datasets.conftest import import_into

    dataset = import_into(team, _write(tmp_path / "d.csv", "id,text,label\na,hi,cat\n"))
    owner = team.user("owner")
    folder = Path(settings.LOUPE_UPLOAD_DIR)
    old, fresh, finished = (
        services.upload_create(dataset=dataset, by=owner, file_name=f"{n}.csv", size=100)
        for n in ("old", "fresh", "finished")
    )
    for upload in (old, fresh, finished):
        services.upload_append(upload=upload, start=0, data=b"id,text\n")
    Upload.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=25))
    Upload.objects.filter(pk=finished.pk).update(
        created_at=timezone.now() - timedelta(hours=25), completed_at=timezone.now()
    )
    (folder / f"{finished.pk}.part").unlink()
    orphan = folder / "999999.part"  # an upload whose dataset was deleted
    orphan.write_bytes(b"left")
    _age(orphan, 25)
    unpacking = folder / "archive-dead"  # a worker died unpacking here
    unpacking.mkdir()
    (unpacking / "entry-0").write_bytes(b"x")
    _age(unpacking, 25)
    recent = folder / "archive-busy"
    recent.mkdir()

    def failed_job(hours: float, status=JobStatus.FAILED) -> ImportJob:
        job = services.import_job_create(
            dataset=dataset,
            by=owner,
            file_name="r.csv",
            fmt="csv",
            upload=ContentFile(b"id\n", name="r.csv"),
            enqueue=False,
        )
        ImportJob.objects.filter(pk=job.pk).update(
            status=status, finished_at=timezone.now() - timedelta(hours=hours)
        )
        return ImportJob.objects.get(pk=job.pk)

    refused_old, refused_recent, done_old = failed_job(25), failed_job(1), failed_job(25, "done")
    local = dataset.imports.get(options__local=True)  # a file on the importer's disk
    ImportJob.objects.filter(pk=local.pk).update(
        status=JobStatus.FAILED, finished_at=timezone.now() - timedelta(hours=25)
    )

    purge_uploads()

    assert set(Upload.objects.values_list("pk", flat=True)) == {fresh.pk, finished.pk}
    assert not (folder / f"{old.pk}.part").exists()
    assert (folder / f"{fresh.pk}.part").read_bytes() == b"id,text\n"
    assert not orphan.exists() and not unpacking.exists() and recent.exists()
    assert not default_storage.exists(refused_old.file)
    assert ImportJob.objects.get(pk=refused_old.pk).file == ""
    for kept in (refused_recent, done_old):
        assert default_storage.exists(kept.file)
        assert ImportJob.objects.get(pk=kept.pk).file == kept.file
    assert Path(local.file).exists() and ImportJob.objects.get(pk=local.pk).file == local.file
    purge_uploads()  # twice changes nothing more
    assert Upload.objects.count() == 2


def test_the_sweep_is_scheduled():
    schedule = settings.CELERY_BEAT_SCHEDULE.values()
    assert "loupe.datasets.purge_uploads" in {entry["task"] for entry in schedule}


@pytest.mark.parametrize(
    "name,value,says",
    [
        ("LOUPE_ARCHIVE_MAX_RATIO", "0.5", "LOUPE_ARCHIVE_MAX_RATIO must be 1 or more"),
        ("LOUPE_UPLOAD_EXPIRE_HOURS", "0", "LOUPE_UPLOAD_EXPIRE_HOURS must be more than zero"),
    ],
)
def test_limits_out_of_range_stop_start_up(name, value, says):
    from tests.config.test_settings_and_health import run_manage

    result = run_manage("check", env={name: value})
    assert result.returncode != 0 and says in result.stderr


def test_taking_the_images_and_then_the_table_share_one_budget(tmp_path):
    """Extraction runs twice (images, then the table): together they may not pass the total."""
    archive = make_zip(tmp_path / "a.zip", {"t.csv": b"i" * 600, "img/a.png": b"\0" * 600})
    contents = inspect_archive(str(archive), max_bytes=10**9, max_entries=10, max_ratio=100)
    held = ArchiveContents(
        table=contents.table,
        table_format=contents.table_format,
        images=contents.images,
        total_bytes=contents.total_bytes,
        limits=Limits(max_bytes=1000, max_ratio=100, archive_bytes=os.path.getsize(archive)),
    )
    work = tmp_path / "work"
    work.mkdir()
    assert [name for name, _path in extract(str(archive), held, {"img/a.png"}, str(work))] == [
        "img/a.png"
    ]
    with pytest.raises(FileRefused, match="'t.csv' expands past the limit"):
        for _name, _path in extract(str(archive), held, {"t.csv"}, str(work)):
            pass
