"""Image datasets from archives: unsafe entries refused before anything is written; images served
only through the project's access check."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image

from apps.datasets.models import Dataset, Sample
from apps.projects.capabilities import Cap
from tests.conftest import PERSONAS
from tests.datasets.conftest import snapshot
from tests.projects.test_access_matrix import expected

pytestmark = pytest.mark.django_db(transaction=True)


def png(colour) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 6), colour).save(out, format="PNG")
    return out.getvalue()


TABLE = "id,image,label\na,img/red.png,warm\nb,img/blue.png,cold\n"


def make_zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def media_files() -> set[str]:
    root = Path(settings.MEDIA_ROOT) / "datasets"
    return {str(p) for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def run(team, path):
    call_command(
        "import_samples",
        str(path),
        project=team.project.slug,
        dataset="pictures",
        create=True,
        user=team.user("owner").username,
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )


@pytest.fixture
def pictures(team, tmp_path) -> Dataset:
    run(
        team,
        make_zip(
            tmp_path / "ok.zip",
            {"table.csv": TABLE.encode(), "img/red.png": png("red"), "img/blue.png": png("blue")},
        ),
    )
    return Dataset.objects.get(name="pictures")


def test_zip_import_stores_images_and_serves_them(team, pictures, web_as):
    red = Sample.objects.get(external_id="a")
    assert pictures.modality == "image" and red.image.endswith("/img/red.png")
    response = web_as(team.user("viewer")).get(f"/datasets/{pictures.pk}/media/{red.image}")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(b"".join(response.streaming_content))).getpixel((0, 0)) == (
        255,
        0,
        0,
    )


@pytest.mark.parametrize("persona", PERSONAS)
def test_images_only_through_the_access_check(persona, team, pictures, web_as):
    path = Sample.objects.get(external_id="a").image
    response = web_as(team.user(persona)).get(f"/datasets/{pictures.pk}/media/{path}")
    assert response.status_code == expected(persona, Cap.VIEW, 200)


def test_a_path_no_sample_points_at_is_404(team, pictures, web_as):
    client = web_as(team.user("owner"))
    assert client.get(f"/datasets/{pictures.pk}/media/../../../etc/passwd").status_code == 404
    assert client.get(f"/datasets/{pictures.pk}/media/import-1/table.csv").status_code == 404


def tar_with_link(path: Path) -> Path:
    with tarfile.open(path, "w") as archive:
        data = TABLE.encode()
        info = tarfile.TarInfo("table.csv")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("img/red.png")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        archive.addfile(link)
    return path


@pytest.mark.parametrize(
    "build,message",
    [
        (
            lambda d: make_zip(
                d / "a.zip", {"table.csv": TABLE.encode(), "../evil.png": png("red")}
            ),
            "'..'",
        ),
        (
            lambda d: make_zip(
                d / "b.zip", {"table.csv": TABLE.encode(), "/abs/evil.png": png("red")}
            ),
            "absolute",
        ),
        (lambda d: tar_with_link(d / "l.tar"), "is a link"),
        (lambda d: make_zip(d / "c.zip", {"img/red.png": png("red")}), "exactly one table"),
        (
            lambda d: make_zip(
                d / "d.zip",
                {
                    "table.csv": b"id,image,label\nc,img/red.png,warm\nd,img/green.png,cold\n",
                    "img/red.png": png("red"),
                },
            ),
            "not an image in the archive",
        ),
        (lambda d: (d / "e.zip").write_bytes(b"PK\x03\x04 broken") and d / "e.zip", "archive"),
    ],
)
def test_unsafe_or_bad_archives_are_refused_and_write_nothing(
    build, message, team, pictures, tmp_path
):
    before, files = snapshot(), media_files()
    path = build(tmp_path)
    with pytest.raises(CommandError, match=message):
        run(team, path)
    assert snapshot() == before and media_files() == files


def test_decompressed_size_limit(team, pictures, tmp_path, settings):
    settings.LOUPE_ARCHIVE_MAX_BYTES = 1000
    bomb = make_zip(
        tmp_path / "bomb.zip", {"table.csv": TABLE.encode(), "img/red.png": b"\0" * 50_000}
    )
    before, files = snapshot(), media_files()
    with pytest.raises(CommandError, match="decompresses to more than 1,000 bytes"):
        run(team, bomb)
    assert snapshot() == before and media_files() == files
    assert os.path.getsize(bomb) < 50_000  # small on disk, large when unpacked
