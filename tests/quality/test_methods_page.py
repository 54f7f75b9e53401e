"""The methods page: one section per quality signal, each with its defaults and its paper."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from apps.quality.views import METHOD_SECTIONS
from tests.conftest import PERSONAS

pytestmark = pytest.mark.django_db

URL = "/methods/"

# Anchors other pages link to (`{% url 'quality:methods' %}#<anchor>`): they must not move.
ANCHORS = [
    "likely-mislabeled",
    "error-potential",
    "outlier",
    "near-duplicates",
    "clusters",
    "weak-slices",
    "map",
    "drift",
    "label-noise",
    "active-learning",
    "redundancy",
    "class-overlap",
    "out-of-sample-probabilities",
]

# The paper each signal's method comes from, by the link its section must give.
PAPERS = {
    "out-of-sample-probabilities": ["https://arxiv.org/abs/1911.00068"],
    "likely-mislabeled": [
        "https://arxiv.org/abs/1911.00068",
        "https://arxiv.org/abs/2004.12289",
        "https://arxiv.org/abs/1106.0219",
        "https://arxiv.org/abs/1706.04599",
        "https://arxiv.org/abs/1402.1892",
    ],
    "error-potential": ["https://arxiv.org/abs/2001.10528", "https://arxiv.org/abs/2009.10795"],
    "class-overlap": ["https://arxiv.org/abs/1911.00068"],
    "outlier": [
        "https://arxiv.org/abs/2207.03061",
        "https://arxiv.org/abs/1807.03888",
        "https://doi.org/10.1111/j.2517-6161.1995.tb02031.x",
    ],
    "near-duplicates": ["https://arxiv.org/abs/2303.09540"],
    "redundancy": ["https://arxiv.org/abs/2303.09540", "https://arxiv.org/abs/2206.14486"],
    "clusters": ["https://arxiv.org/abs/2203.05794"],
    "weak-slices": [
        "https://doi.org/10.2307/2340521",
        "https://doi.org/10.1111/j.2517-6161.1995.tb02031.x",
    ],
    "map": ["https://doi.org/10.1080/14786440109462720"],
    "drift": ["https://arxiv.org/abs/1810.11953", "https://arxiv.org/abs/2204.06507"],
    "label-noise": ["https://doi.org/10.1080/01621459.1927.10502953"],
    "active-learning": ["https://arxiv.org/abs/2107.14263"],
}


class _Sections(HTMLParser):
    """Per <section id=…>: the hrefs of its paper links and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.papers: dict[str, list[str]] = {}
        self.text: dict[str, str] = {}
        self.ids: list[str] = []
        self._current: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.append(attrs["id"])
        if tag == "section" and "id" in attrs:
            self._current = attrs["id"]
            self.papers[self._current] = []
            self.text[self._current] = ""
        elif tag == "a" and self._current and "paper" in (attrs.get("class") or "").split():
            self.papers[self._current].append(attrs["href"])

    def handle_endtag(self, tag):
        if tag == "section":
            self._current = None

    def handle_data(self, data):
        if self._current:
            self.text[self._current] += data


def parsed(response) -> _Sections:
    parser = _Sections()
    parser.feed(response.content.decode())
    return parser


@pytest.fixture
def page(team, web_as):
    response = web_as(team.user("viewer")).get(URL)
    assert response.status_code == 200
    return parsed(response)


def test_methods_page_is_mounted_where_other_pages_link_to_it():
    from django.urls import reverse

    assert reverse("quality:methods") == URL


@pytest.mark.parametrize("persona", PERSONAS)
def test_every_signed_in_user_sees_the_methods_page(persona, team, web_as):
    response = web_as(team.user(persona)).get(URL)
    assert response.status_code == 200
    assert "quality/methods.html" in [t.name for t in response.templates]


def test_anonymous_user_is_sent_to_log_in(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response.url.startswith("/accounts/login/")
    assert "next=/methods/" in response.url


def test_the_page_shows_no_project_data(team, web_as):
    content = web_as(team.user("owner")).get(URL).content.decode()
    assert team.project.name not in content
    assert team.other_project.name not in content


def test_top_navigation_links_to_the_methods_page(team, web_as):
    content = web_as(team.user("reviewer")).get("/projects/").content.decode()
    assert f'href="{URL}"' in content
    methods = web_as(team.user("reviewer")).get(URL).content.decode()
    assert f'href="{URL}" aria-current="page"' in methods


@pytest.mark.parametrize("anchor", ANCHORS)
def test_each_signal_has_its_anchor(anchor, page):
    assert anchor in page.papers, f"no <section id={anchor!r}>"
    assert page.ids.count(anchor) == 1


def test_table_of_contents_lists_every_section(page):
    assert set(ANCHORS) <= {anchor for anchor, _title in METHOD_SECTIONS}
    for anchor, _title in METHOD_SECTIONS:
        assert anchor in page.papers


@pytest.mark.parametrize("anchor", [a for a, _ in METHOD_SECTIONS])
def test_each_section_links_its_paper(anchor, page):
    links = page.papers[anchor]
    assert links, f"section {anchor!r} names no paper"
    assert all(href.startswith("https://") for href in links)
    for expected in PAPERS.get(anchor, []):
        assert expected in links


def test_defaults_shown_are_the_ones_the_code_runs_with(page):
    """Numbers come from the engine and the pipeline, so the page follows them when they change."""
    import inspect

    from apps.quality import pipeline
    from workers.engine import duplicates, labels, neighbours, outliers, slices

    def default(function, name):
        return inspect.signature(function).parameters[name].default

    expected = {
        "near-duplicates": [
            f"{duplicates.EMBEDDING_Z:g}",
            str(duplicates.EMBEDDING_LOW),
            str(duplicates.EMBEDDING_HIGH),
            str(duplicates.TEXT_JACCARD),
            str(duplicates.TEXT_HIGH),
            str(duplicates.NUM_PERM),
            str(duplicates.IMAGE_DISTANCE),
        ],
        "outlier": [
            str(pipeline.NEIGHBOUR_K),
            str(outliers.FDR),
            str(outliers.MIN_THRESHOLD),
            str(outliers.COMMON_WORDS),
        ],
        "out-of-sample-probabilities": [
            f"{default(labels.out_of_sample_probs, 'n_folds')}-fold",
            str(labels.KNN_K),
            str(labels.PCA_DIM),
        ],
        "likely-mislabeled": [
            str(labels.CLEANING_ROUNDS),
            "{" + ", ".join(f"{w:g}" for w in labels.MIX_WEIGHTS) + "}",
            f"{labels.CALIBRATION_ROWS:,}",
        ],
        "class-overlap": [str(pipeline.BOUNDARY_MARGIN)],
        "redundancy": [str(pipeline.REDUNDANT_BELOW)],
        "weak-slices": [
            str(default(slices.weak_slices, "min_size")),
            str(default(slices.weak_slices, "alpha")),
        ],
        "drift": [str(default(neighbours.drift, "coverage_percentile"))],
        "active-learning": [str(pipeline.ACTIVE_LEARNING_BUDGET)],
        "clusters": [str(default(neighbours.default_cluster_count, "cap"))],
    }
    for anchor, values in expected.items():
        for value in values:
            assert value in page.text[anchor], f"{anchor}: {value} not shown"
