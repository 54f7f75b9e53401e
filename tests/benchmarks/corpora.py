"""Real text for the detection benchmarks, from files any Debian machine can install.

The corpus is Debian's fortune files: some 15,000 quotations, jokes and verses that people
filed into categories by hand over decades. The categories are fuzzy, as real ones are: a
quip about lawyers may sit in `law`, `people` or `work`; a line of verse in `songs-poems` or
`love`. Other sources supply the text that does not belong, to plant as contamination:
fortunes in German and Spanish, licence texts, Python docstrings and package descriptions.

Needs: apt-get install fortunes fortunes-de fortunes-es. Text is embedded with
all-MiniLM-L6-v2 (the `embed` extra); embeddings are cached under ~/.cache/loupe-bench.
"""

from __future__ import annotations

import ast
import hashlib
import re
import sysconfig
from pathlib import Path

import numpy as np

FORTUNES = Path("/usr/share/games/fortunes")
LICENCES = Path("/usr/share/common-licenses")
DPKG_STATUS = Path("/var/lib/dpkg/status")
CACHE = Path.home() / ".cache" / "loupe-bench"

# Twelve categories of a few hundred fortunes each, topical enough that a classifier learns
# them and close enough that it confuses them (law, politics and work; love and songs-poems).
CATEGORIES = (
    "art",
    "computers",
    "education",
    "food",
    "law",
    "literature",
    "love",
    "politics",
    "science",
    "songs-poems",
    "sports",
    "work",
)
FOREIGN = ("german", "spanish", "licences", "docstrings", "package descriptions")
MIN_CHARS, MAX_CHARS = 40, 600


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _fits(text: str) -> bool:
    return MIN_CHARS <= len(text) <= MAX_CHARS


def _fortune_file(path: Path) -> list[str]:
    raw = path.read_text(encoding="utf-8", errors="replace")
    return [t for t in (_clean(part) for part in re.split(r"^%\s*$", raw, flags=re.M)) if _fits(t)]


def fortunes(categories: tuple[str, ...] = CATEGORIES) -> tuple[list[str], np.ndarray, list[str]]:
    """(texts, class index per text, class names). A text filed under two of the categories
    is kept once, under the first; exact repeats within a category are dropped."""
    if not FORTUNES.is_dir():
        raise SystemExit("the corpus needs Debian's fortunes: apt-get install fortunes")
    texts: list[str] = []
    labels: list[int] = []
    seen: set[str] = set()
    for number, name in enumerate(categories):
        for text in _fortune_file(FORTUNES / name):
            if text not in seen:
                seen.add(text)
                texts.append(text)
                labels.append(number)
    return texts, np.asarray(labels), list(categories)


def _fortunes_in(folder: Path) -> list[str]:
    if not folder.is_dir():
        raise SystemExit(f"{folder} is missing: apt-get install fortunes-de fortunes-es")
    out: list[str] = []
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix not in {".dat", ".u8"}:
            out.extend(_fortune_file(path))
    return out


def _licence_paragraphs() -> list[str]:
    out: list[str] = []
    for path in sorted(LICENCES.iterdir()):
        if path.is_file():
            raw = path.read_text(encoding="utf-8", errors="replace")
            out.extend(t for t in (_clean(p) for p in re.split(r"\n\s*\n", raw)) if _fits(t))
    return out


def _docstrings() -> list[str]:
    """Docstrings of the standard library's functions and classes."""
    out: list[str] = []
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(stdlib.glob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                doc = ast.get_docstring(node)
                if doc and _fits(_clean(doc)):
                    out.append(_clean(doc))
    return out


def _package_descriptions() -> list[str]:
    """The descriptions of the Debian packages installed on this machine."""
    out: list[str] = []
    for stanza in DPKG_STATUS.read_text(encoding="utf-8", errors="replace").split("\n\n"):
        match = re.search(r"^Description: (.*(?:\n .*)*)", stanza, flags=re.M)
        if match:
            lines = [line.strip() for line in match.group(1).splitlines()]
            text = _clean(" ".join(line for line in lines if line != "."))
            if _fits(text):
                out.append(text)
    return out


def foreign(kind: str, n: int | None = None, *, seed: int = 0) -> list[str]:
    """Texts of one source that does not belong to the corpus, deduplicated: all of them in
    order, or `n` drawn at random."""
    sources = {
        "german": lambda: _fortunes_in(FORTUNES / "de"),
        "spanish": lambda: _fortunes_in(FORTUNES / "es"),
        "licences": _licence_paragraphs,
        "docstrings": _docstrings,
        "package descriptions": _package_descriptions,
    }
    if kind not in sources:
        raise ValueError(f"unknown source {kind!r}; one of {', '.join(FOREIGN)}")
    texts = list(dict.fromkeys(sources[kind]()))
    if n is None:
        return texts
    picked = np.random.default_rng(seed).choice(len(texts), size=min(n, len(texts)), replace=False)
    return [texts[i] for i in sorted(picked.tolist())]


def embed(texts: list[str]) -> np.ndarray:
    """all-MiniLM-L6-v2 embeddings (unit rows, float32), cached by the texts' digest."""
    from workers.engine.embeddings import text_minilm

    digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:20]
    path = CACHE / f"minilm-{digest}.npy"
    if path.exists():
        return np.load(path)
    vectors = np.asarray(text_minilm(texts), dtype=np.float32)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors
