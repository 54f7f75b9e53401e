"""Image paths stay inside their dataset's media: an import row that points elsewhere is refused
by row and column, and the media view serves only files inside the dataset's own media folder."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.datasets import selectors
from apps.datasets.models import Dataset, ImportJob, Sample
from tests.datasets.conftest import import_into, snapshot
from tests.datasets.test_archives import make_zip, png

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = b"id,text,label\ns1,the other team's private text,cat\n"


@pytest.fixture
def victim_file(team, tmp_path, api_as) -> str:
    """An import file another project uploaded: it sits in media storage under imports/."""
    dataset = import_into(team, _write(tmp_path / "seed.csv", "id,text,label\na,hello,cat\n"))
    upload = io.BytesIO(SECRET)
    upload.name = "secret.csv"
    response = api_as(team.user("owner")).post(
        f"/api/datasets/{dataset.pk}/imports/", {"file": upload}, format="multipart"
    )
    assert response.status_code == 202, response.content
    stored = ImportJob.objects.get(file_name="secret.csv").file
    assert (Path(settings.MEDIA_ROOT) / stored).read_bytes() == SECRET
    return stored


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _import_as_outsider(team, path: Path, name: str = "mine") -> None:
    call_command(
        "import_samples",
        str(path),
        project=team.other_project.slug,
        dataset=name,
        create=True,
        modality="image",
        user=team.user("outsider").username,
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )


def _own_image_dataset(team, tmp_path) -> Dataset:
    _import_as_outsider(team, _write(tmp_path / "own.csv", "id,image\nok,pics/a.png\n"))
    return Dataset.objects.get(name="mine")


def test_a_csv_row_pointing_at_another_projects_import_file_is_refused(
    team, victim_file, tmp_path, web_as
):
    own = _own_image_dataset(team, tmp_path)
    climb = f"../../../{victim_file}"
    attack = _write(tmp_path / "attack.csv", f"id,image\nx,{climb}\n")
    before = snapshot()
    with pytest.raises(CommandError, match=r"row 1, column 'image'.*'\.\.'"):
        _import_as_outsider(team, attack)
    assert snapshot() == before
    client = web_as(team.user("outsider"))
    for url in (
        f"/datasets/{own.pk}/media/{climb}",
        f"/datasets/{own.pk}/media/{climb.replace('/', '%2F')}",
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert SECRET not in b"".join(getattr(response, "streaming_content", [response.content]))


def test_a_row_that_escaped_before_is_not_served(team, victim_file, tmp_path, web_as):
    """A sample stored with a climbing path (by an older import) still cannot read out."""
    own = _own_image_dataset(team, tmp_path)
    climb = f"../../../{victim_file}"
    Sample.objects.create(dataset=own, external_id="old", image=climb)
    client = web_as(team.user("outsider"))
    assert client.get(f"/datasets/{own.pk}/media/{climb}").status_code == 404
    assert client.get(f"/datasets/{own.pk}/media/{climb.replace('/', '%2F')}").status_code == 404


def test_a_link_inside_the_media_folder_leading_out_is_not_served(
    team, victim_file, tmp_path, web_as
):
    own = _own_image_dataset(team, tmp_path)
    folder = Path(settings.MEDIA_ROOT) / "datasets" / str(own.pk) / "media" / "pics"
    folder.mkdir(parents=True, exist_ok=True)
    os.symlink(Path(settings.MEDIA_ROOT) / victim_file, folder / "link.png")
    Sample.objects.create(dataset=own, external_id="linked", image="pics/link.png")
    response = web_as(team.user("outsider")).get(f"/datasets/{own.pk}/media/pics/link.png")
    assert response.status_code == 404


def test_an_image_inside_the_media_folder_is_served(team, tmp_path, web_as):
    own = _own_image_dataset(team, tmp_path)
    folder = Path(settings.MEDIA_ROOT) / "datasets" / str(own.pk) / "media" / "pics"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "a.png").write_bytes(png("red"))
    client = web_as(team.user("outsider"))
    assert client.get(f"/datasets/{own.pk}/media/pics/a.png").status_code == 200
    # The same file by a needlessly roundabout path is the same image.
    assert client.get(f"/datasets/{own.pk}/media/./pics//a.png").status_code == 200


@pytest.mark.parametrize(
    "image,reason",
    [
        ("/etc/passwd", "absolute"),
        ("C:/Windows/win.ini", "absolute"),
        ("pics/../../x.png", "'..'"),
        ("..", "'..'"),
        ("pics\\..\\..\\x.png", "backslash"),
        ("pics/a\x00.png", "NUL"),
        ("\\\\server\\share\\x.png", "backslash"),
    ],
)
@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_unsafe_image_paths_are_refused_by_row_and_column(team, tmp_path, image, reason, fmt):
    _own_image_dataset(team, tmp_path)
    rows = [{"id": "fine", "image": "pics/b.png"}, {"id": "bad", "image": image}]
    path = tmp_path / f"rows.{fmt}"
    if fmt == "csv":
        path.write_text("id,image\n" + "".join(f"{r['id']},{r['image']}\n" for r in rows))
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
    before = snapshot()
    with pytest.raises(CommandError, match=rf"row 2, column 'image'.*{reason}"):
        _import_as_outsider(team, path)
    assert snapshot() == before


def test_archive_rows_are_normalised_and_confined(team, tmp_path, web_as):
    archive = make_zip(
        tmp_path / "a.zip",
        {"table.csv": b"id,image\na,./img//red.png\n", "img/red.png": png("red")},
    )
    _import_as_outsider(team, archive, name="zipped")
    sample = Sample.objects.get(external_id="a", dataset__name="zipped")
    assert sample.image.endswith("/img/red.png") and "//" not in sample.image
    response = web_as(team.user("outsider")).get(
        f"/datasets/{sample.dataset_id}/media/{sample.image}"
    )
    assert response.status_code == 200
    bad = make_zip(
        tmp_path / "b.zip",
        {"table.csv": b"id,image\nb,img/../../../x.png\n", "img/red.png": png("red")},
    )
    before = snapshot()
    with pytest.raises(CommandError, match=r"row 1, column 'image'.*'\.\.'"):
        _import_as_outsider(team, bad, name="zipped")
    assert snapshot() == before


def test_media_path_refuses_a_path_that_leaves_the_dataset(team, tmp_path):
    own = _own_image_dataset(team, tmp_path)
    assert selectors.media_path(own, "./pics//a.png") == f"datasets/{own.pk}/media/pics/a.png"
    with pytest.raises(ValueError, match=r"'\.\.'"):
        selectors.media_path(own, "../../../imports/1/1/secret.csv")
