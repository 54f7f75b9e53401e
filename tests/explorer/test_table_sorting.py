"""Sorting the sample table by a value that may be missing (label, split, id, a metadata key),
a keyset page at a time either way; the columns a table shows and a saved view keeps; each
tried as every role where it touches permissions."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import pytest
from django.db import connection

from apps.explorer import selectors
from apps.explorer.models import SavedView
from apps.projects.capabilities import Cap
from tests.conftest import PERSONAS
from tests.projects.test_access_matrix import expected

VALUE_ORDERINGS = [
    "label",
    "split",
    "external_id",
    "metadata.n",  # numbers and a string: in JSON's order, strings before numbers
    "metadata.src",
    "metadata.ok",
    "metadata.nowhere",  # no sample has it: all missing, by id
]


def collated(strings) -> dict[str, int]:
    """Each string's rank in the database's own collation (what ORDER BY text follows)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT v FROM unnest(%s::text[]) v ORDER BY v", [sorted(set(strings))])
        return {row[0]: i for i, row in enumerate(cursor.fetchall())}


def expected_order(rows, name: str, *, descending: bool) -> list[int]:
    """Ids in the order the table must list them: by value (JSON's order for metadata:
    strings, then numbers, then booleans), then id; samples without a value last, by id in the
    same direction."""
    if name.startswith("metadata."):
        key = name.removeprefix("metadata.")
        values = {r["id"]: r["metadata"].get(key) for r in rows}
    else:
        values = {r["id"]: r[name] for r in rows}
    ranks = collated(v for v in values.values() if isinstance(v, str))

    def sort_key(i: int):
        v = values[i]
        if isinstance(v, bool):
            return (2, int(v), i)
        if isinstance(v, int | float):
            return (1, v, i)
        return (0, ranks[v], i)

    present = sorted((i for i, v in values.items() if v is not None), key=sort_key)
    missing = sorted(i for i, v in values.items() if v is None)
    if descending:
        return present[::-1] + missing[::-1]
    return present + missing


def pages(client, url: str, link: str) -> list[list[int]]:
    """The ids of each page, following `link` (next or previous) from `url`."""
    found = []
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        found.append([r["id"] for r in body["results"]])
        url = body[link]
    return found


@pytest.mark.parametrize("name", VALUE_ORDERINGS)
@pytest.mark.parametrize("descending", [False, True])
def test_every_match_once_in_order_walking_forward_and_back(name, descending, world, team, api_as):
    dataset, _run, rows = world
    client = api_as(team.user("viewer"))
    ordering = f"-{name}" if descending else name
    query = quote(json.dumps({"field": "split", "op": "!=", "value": "validation"}))
    base = f"/api/datasets/{dataset.pk}/samples/?q={query}&ordering={ordering}&page_size=6"
    matching = [r for r in rows if r["split"] != "validation"]
    want = expected_order(matching, name, descending=descending)
    forward = pages(client, base, "next")
    assert [i for page in forward for i in page] == want
    assert len(forward) > 3
    # From the last page back to the first: the same pages, in reverse.
    last = client.get(base).json()
    while last["next"]:
        last = client.get(last["next"]).json()
    back = pages(client, last["previous"], "previous")
    assert back == forward[-2::-1]


def test_missing_values_come_last_either_way_and_the_sample_page_steps_through_them(world, team):
    dataset, run, rows = world
    for ordering in ("metadata.src", "-metadata.src", "-label"):
        want = expected_order(rows, ordering.lstrip("-"), descending=ordering.startswith("-"))
        page = selectors.sample_page(dataset, query={}, run=run, ordering=ordering, size=200)
        assert [s.pk for s in page.samples] == want
        by_id = {s.pk: s for s in page.samples}
        # Next and previous on the sample page, across the border of the missing ones too.
        for at in range(len(want)):
            steps = selectors.steps_in_query(
                dataset, by_id[want[at]], query={}, run=run, ordering=ordering
            )
            assert steps == (
                want[at - 1] if at else None,
                want[at + 1] if at + 1 < len(want) else None,
            )


@pytest.mark.parametrize(
    "params,field,message",
    [
        ("ordering=metadata.", "ordering", "metadata key"),
        ("ordering=password", "ordering", "cannot be sorted by"),
        ("ordering=label&cursor=eyJhdCI6IFsxLCAyXX0", "cursor", "not a cursor of this"),
        ("ordering=metadata.n&cursor=eyJhdCI6IFsxXX0", "cursor", "not a cursor of this"),
        ("columns=label,password", "columns", "unknown column"),
    ],
)
def test_a_bad_ordering_cursor_or_columns_is_a_400_that_says_why(
    params, field, message, world, team, api_as
):
    dataset, _run, _rows = world
    response = api_as(team.user("viewer")).get(f"/api/datasets/{dataset.pk}/samples/?{params}")
    assert response.status_code == 400
    assert message in response.json()[field][0]


def headings(html: str) -> list[str]:
    return re.findall(r'<th[^>]*data-column="([^"]+)"', html)


def test_the_table_shows_the_chosen_columns_and_its_headings_sort(world, team, web_as):
    dataset, _run, rows = world
    client = web_as(team.user("viewer"))
    url = f"/datasets/{dataset.pk}/samples/"
    plain = client.get(url).content.decode()
    assert headings(plain) == [
        "external_id",
        "split",
        "label",
        "suggested_label",
        "mislabel_score",
        "text",
    ]
    # The menu: a choice of columns, the metadata keys of the samples among them, reloads the
    # table with `columns`.
    chosen = client.get(url, {"col": ["label", "metadata.src", "tags"], "col_key": "region"})
    assert chosen.status_code == 302
    assert "columns=label%2Cmetadata.src%2Ctags%2Cmetadata.region" in chosen["Location"]
    assert 'value="metadata.ok"' in plain and 'value="metadata.n"' in plain
    shown = client.get(chosen["Location"]).content.decode()
    assert headings(shown) == ["label", "metadata.src", "tags", "metadata.region"]
    # A heading sorts A to Z, then Z to A; the sorted one says so.
    link = re.search(r'data-column="metadata.src"><a class="sorter" href="([^"]+)"', shown)
    ascending = client.get(link.group(1).replace("&amp;", "&")).content.decode()
    assert 'aria-sort="ascending" data-column="metadata.src"' in ascending
    order = [int(x) for x in re.findall(r'data-sample="(\d+)"', ascending)]
    assert order == expected_order(rows, "metadata.src", descending=False)[:50]
    link = re.search(r'data-column="metadata.src"><a class="sorter" href="([^"]+)"', ascending)
    assert "ordering=-metadata.src" in link.group(1)
    assert "columns=label" in link.group(1)
    # A column sorted by but not chosen is shown too; a sample's link keeps the columns.
    by_split = client.get(url, {"columns": "label", "ordering": "-split"}).content.decode()
    assert headings(by_split) == ["label", "split"]
    assert "aria-sort" in by_split
    bad = client.get(url, {"columns": "nope"}).content.decode()
    assert "unknown column" in bad and headings(bad) == headings(plain)


@pytest.mark.parametrize("persona", PERSONAS)
def test_a_saved_view_keeps_its_columns_and_ordering_as_every_role(persona, world, team, web_as):
    dataset, _run, _rows = world
    client = web_as(team.user(persona))
    response = client.post(
        f"/datasets/{dataset.pk}/views/",
        {"name": "by source", "ordering": "-metadata.src", "columns": "metadata.src,label"},
    )
    assert response.status_code == expected(persona, Cap.COMMENT, 302)
    saved = SavedView.objects.filter(dataset=dataset, name="by source").first()
    if response.status_code != 302:
        assert saved is None
        return
    assert saved.columns == ["metadata.src", "label"] and saved.ordering == "-metadata.src"
    opened = client.get(response["Location"]).content.decode()
    assert headings(opened) == ["metadata.src", "label"]
    assert 'aria-sort="descending" data-column="metadata.src"' in opened


def test_the_api_saves_and_returns_a_views_columns(world, team, api_as):
    dataset, _run, rows = world
    client = api_as(team.user("reviewer"))
    base = f"/api/datasets/{dataset.pk}/views/"
    made = client.post(
        base,
        {"name": "ids", "query": {}, "ordering": "external_id", "columns": ["external_id"]},
        format="json",
    )
    assert made.status_code == 201, made.content
    assert made.json()["columns"] == ["external_id"] and made.json()["ordering"] == "external_id"
    plain = client.post(base, {"name": "plain", "query": {}}, format="json")
    assert plain.status_code == 201 and plain.json()["columns"] == []
    bad = client.post(base, {"name": "bad", "query": {}, "columns": ["nope"]}, format="json")
    assert bad.status_code == 400 and "unknown column" in bad.json()["columns"][0]
    found = client.get(f"/api/datasets/{dataset.pk}/samples/?view={made.json()['id']}").json()
    assert [r["id"] for r in found["results"]] == expected_order(
        rows, "external_id", descending=False
    )[:50]
