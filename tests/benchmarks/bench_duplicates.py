"""Near-duplicate detection on planted copies: Loupe against cleanlab Datalab, side by side.

Text: the fortunes corpus (tests/benchmarks/corpora.py, MiniLM embeddings). Images: the
96x96 PNG icons of the Adwaita theme under /usr/share/icons (Debian's adwaita-icon-theme),
embedded as the product embeds images without vectors (pixels-pca). Natural near duplicates
already in a corpus have no known truth, so they are dropped first (one of each pair at cosine
>= 0.9, character Jaccard >= 0.5 or image hash distance <= 10). Then copies of a few hundred
originals are planted, of several kinds:

  text:   exact; near (words dropped and swapped, the variant whose MiniLM cosine to the
          original is nearest 0.925 of three strengths); typos (a character edit every
          30 characters); small edit (a sentence cut, or a short one added)
  images: re-encode (JPEG quality 25-45); resize (to 40-70 %); crop (4-12 % off each side);
          colour (brightness and saturation changed by 6-12 %)

Both detectors see the same embeddings: Datalab as `find_issues(features=X,
issue_types={"near_duplicate": {}})`, Loupe as a scoring run computes its groups (kNN pairs
above the calibrated threshold, MinHash LSH over the texts, perceptual hashes of the images).
A predicted pair is two rows in one Loupe group, or a row and a member of its Datalab
near-duplicate set; it is right when both rows come from the same original. Recall is per
kind of copy (original-copy pairs found); precision is over every predicted pair.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 nice -n 10 python tests/benchmarks/bench_duplicates.py
    ... bench_duplicates.py --scale 100000   # time and memory of the lexical pass alone

Needs: apt-get install fortunes adwaita-icon-theme; the `embed` extra; cleanlab.
"""

from __future__ import annotations

import argparse
import io
import random
import re
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.benchmarks.corpora import FORTUNES, embed, fortunes  # noqa: E402
from workers.engine import duplicates as dup  # noqa: E402
from workers.engine.embeddings import image_pixels_pca  # noqa: E402
from workers.engine.neighbours import knn  # noqa: E402

ICONS = Path("/usr/share/icons/Adwaita/96x96")
PER_KIND_TEXT = 75
PER_KIND_IMAGE = 40
SEED = 0


# ---------------------------------------------------------------------------------------------
# Copies


def _typos(text: str, rng: random.Random, every: int = 30) -> str:
    chars = list(text)
    letters = "abcdefghijklmnopqrstuvwxyz"
    for _ in range(max(1, len(text) // every)):
        i = rng.randrange(len(chars))
        op = rng.choice("sidt")
        if op == "s":
            chars[i] = rng.choice(letters)
        elif op == "i":
            chars.insert(i, rng.choice(letters))
        elif op == "d" and len(chars) > 5:
            del chars[i]
        elif i + 1 < len(chars):
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
    return "".join(chars)


def _reword(text: str, rng: random.Random, strength: float) -> str:
    words = text.split()
    for _ in range(max(1, round(len(words) * strength))):
        if len(words) > 4 and rng.random() < 0.6:
            del words[rng.randrange(len(words))]
        elif len(words) > 2:
            i = rng.randrange(len(words) - 1)
            words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words)


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text) if s]


def _small_edit(text: str, rng: random.Random, extra: list[str]) -> str:
    parts = _sentences(text)
    if len(parts) >= 3:
        del parts[rng.randrange(len(parts))]
        return " ".join(parts)
    return text + " " + rng.choice(extra)


def _clean_texts(texts: list[str], vectors: np.ndarray) -> np.ndarray:
    """Rows to keep: one of each natural pair at cosine >= 0.9 or Jaccard >= 0.5 is dropped."""
    idx, sims = knn(vectors, k=10)
    drop = np.zeros(len(texts), dtype=bool)
    lexical = dup.text_pairs(texts)
    pairs = [(int(i), int(idx[i, c])) for i, c in zip(*np.nonzero(sims >= 0.9), strict=True)]
    pairs += list(zip(lexical.a.tolist(), lexical.b.tolist(), strict=True))
    for i, j in sorted(pairs):
        if not drop[i] and not drop[j]:
            drop[max(i, j)] = True
    return np.flatnonzero(~drop)


def text_dataset() -> tuple[list[str], np.ndarray, np.ndarray, list[str]]:
    """(texts, embeddings, origin per row, kind per row: "" for originals)."""
    texts, _, _ = fortunes()
    vectors = embed(texts)
    keep = _clean_texts(texts, vectors)
    texts, vectors = [texts[i] for i in keep], vectors[keep]
    rng = random.Random(SEED)
    order = list(range(len(texts)))
    rng.shuffle(order)
    kinds = ("exact", "near", "typos", "small edit")
    chosen = {
        kind: order[k * PER_KIND_TEXT : (k + 1) * PER_KIND_TEXT] for k, kind in enumerate(kinds)
    }
    extra = [
        s
        for s in (t.strip() for t in (FORTUNES / "people").read_text(errors="replace").split("%"))
        if 20 <= len(s) <= 60 and "\n" not in s
    ]
    # Near copies: three strengths each, the one nearest cosine 0.925 kept.
    variants = [
        _reword(texts[i], rng, strength) for i in chosen["near"] for strength in (0.08, 0.15, 0.25)
    ]
    variant_vectors = embed(variants)
    copies: list[tuple[int, str, str]] = []
    for n, i in enumerate(chosen["near"]):
        cos = variant_vectors[3 * n : 3 * n + 3] @ vectors[i]
        best = int(np.argmin(np.abs(cos - 0.925)))
        copies.append((i, "near", variants[3 * n + best]))
    copies += [(i, "exact", texts[i]) for i in chosen["exact"]]
    copies += [(i, "typos", _typos(texts[i], rng)) for i in chosen["typos"]]
    copies += [(i, "small edit", _small_edit(texts[i], rng, extra)) for i in chosen["small edit"]]
    fresh = [c for c in copies if c[1] != "near"]
    fresh_vectors = embed([text for _, _, text in fresh])
    near_vectors = embed([text for _, kind, text in copies if kind == "near"])
    all_texts = (
        texts + [text for _, kind, text in copies if kind == "near"] + [t for *_, t in fresh]
    )
    all_vectors = np.vstack([vectors, near_vectors, fresh_vectors])
    origin = np.r_[
        np.arange(len(texts)),
        [i for i, kind, _ in copies if kind == "near"],
        [i for i, *_ in fresh],
    ]
    kind_of = [""] * len(texts) + ["near"] * PER_KIND_TEXT + [k for _, k, _ in fresh]
    return all_texts, all_vectors, origin, kind_of


def _icon(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as picture:
        rgba = picture.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))


def _image_copy(picture: np.ndarray, kind: str, rng: random.Random) -> np.ndarray:
    from PIL import Image, ImageEnhance

    image = Image.fromarray(picture)
    w, h = image.size
    if kind == "re-encode":
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=rng.randint(25, 45))
        return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    if kind == "resize":
        share = rng.uniform(0.4, 0.7)
        return np.asarray(
            image.resize((round(w * share), round(h * share)), Image.Resampling.BILINEAR)
        )
    if kind == "crop":
        cut = [round(rng.uniform(0.04, 0.12) * side) for side in (w, h, w, h)]
        return np.asarray(image.crop((cut[0], cut[1], w - cut[2], h - cut[3])))
    change = rng.choice([-1, 1]) * rng.uniform(0.06, 0.12)
    image = ImageEnhance.Brightness(image).enhance(1 + change)
    return np.asarray(ImageEnhance.Color(image).enhance(1 - change))


def image_dataset() -> tuple[list[np.ndarray], np.ndarray, np.ndarray, list[str]]:
    if not ICONS.is_dir():
        raise SystemExit("the image set needs Debian's icons: apt-get install adwaita-icon-theme")
    pictures = [_icon(p) for p in sorted(ICONS.rglob("*.png"))]
    hashes, readable = dup.image_hashes(pictures)
    close = dup.image_pairs(hashes, readable, max_distance=10)
    vectors = image_pixels_pca(pictures)
    idx, sims = knn(vectors, k=10)
    pairs = list(zip(close.a.tolist(), close.b.tolist(), strict=True))
    pairs += [(int(i), int(idx[i, c])) for i, c in zip(*np.nonzero(sims >= 0.99), strict=True)]
    drop = np.zeros(len(pictures), dtype=bool)
    for i, j in sorted(pairs):
        if not drop[i] and not drop[j]:
            drop[max(i, j)] = True
    pictures = [p for p, d in zip(pictures, drop, strict=True) if not d]
    rng = random.Random(SEED)
    order = list(range(len(pictures)))
    rng.shuffle(order)
    kinds = ("re-encode", "resize", "crop", "colour")
    origin = list(range(len(pictures)))
    kind_of = [""] * len(pictures)
    copies = []
    for k, kind in enumerate(kinds):
        for i in order[k * PER_KIND_IMAGE : (k + 1) * PER_KIND_IMAGE]:
            copies.append(_image_copy(pictures[i], kind, rng))
            origin.append(i)
            kind_of.append(kind)
    everything = pictures + copies
    return everything, image_pixels_pca(everything), np.asarray(origin), kind_of


# ---------------------------------------------------------------------------------------------
# Detectors and scoring


def loupe_pairs(
    vectors: np.ndarray, texts: list[str] | None = None, images: list[np.ndarray] | None = None
) -> tuple[set[tuple[int, int]], float, dict[str, float]]:
    """Pairs within Loupe's groups, the calibrated threshold and seconds per pass."""
    seconds = {}
    started = time.perf_counter()
    idx, sims = knn(vectors, k=10)
    threshold = dup.calibrated_threshold(sims[:, 0])
    found = [dup.embedding_pairs(idx, sims, threshold)]
    seconds["embedding"] = time.perf_counter() - started
    if texts is not None:
        started = time.perf_counter()
        lexical = dup.text_pairs(texts)
        found.append(lexical.at_least(dup.text_threshold(lexical, len(texts))))
        seconds["text"] = time.perf_counter() - started
    if images is not None:
        started = time.perf_counter()
        found.append(dup.image_pairs(*dup.image_hashes(images)))
        seconds["image"] = time.perf_counter() - started
    pairs = set()
    for group in dup.groups_from_pairs(len(vectors), found):
        members = sorted(group)
        pairs.update((a, b) for n, a in enumerate(members) for b in members[n + 1 :])
    return pairs, threshold, seconds


def datalab_pairs(vectors: np.ndarray) -> tuple[set[tuple[int, int]], float]:
    from cleanlab import Datalab

    started = time.perf_counter()
    lab = Datalab(data={"row": list(range(len(vectors)))}, verbosity=0)
    lab.find_issues(features=vectors, issue_types={"near_duplicate": {}})
    sets = lab.get_info("near_duplicate")["near_duplicate_sets"]
    pairs = {(min(i, int(j)), max(i, int(j))) for i, found in enumerate(sets) for j in found}
    return pairs, time.perf_counter() - started


def score(
    pairs: set[tuple[int, int]], origin: np.ndarray, kind_of: list[str]
) -> tuple[float, dict[str, float]]:
    right = sum(origin[a] == origin[b] for a, b in pairs)
    precision = right / len(pairs) if pairs else 1.0
    recall = {}
    for kind in dict.fromkeys(k for k in kind_of if k):
        rows = [i for i, k in enumerate(kind_of) if k == kind]
        hit = sum((min(i, origin[i]), max(i, origin[i])) in pairs for i in rows)
        recall[kind] = hit / len(rows)
    return precision, recall


def report(name: str, vectors, origin, kind_of, **inputs) -> None:
    ours, threshold, seconds = loupe_pairs(vectors, **inputs)
    theirs, their_seconds = datalab_pairs(vectors)
    p_ours, r_ours = score(ours, origin, kind_of)
    p_theirs, r_theirs = score(theirs, origin, kind_of)
    originals = sum(1 for k in kind_of if not k)
    print(f"\n## {name}: {originals} originals + {len(kind_of) - originals} copies")
    print(f"Loupe's calibrated embedding threshold: cosine {threshold:.3f}")
    print("| kind of copy | copies | Loupe recall | Datalab recall |")
    print("|---|---:|---:|---:|")
    for kind, value in r_ours.items():
        count = sum(1 for k in kind_of if k == kind)
        print(f"| {kind} | {count} | {value:.2f} | {r_theirs[kind]:.2f} |")
    print(
        f"| precision on pairs | | {p_ours:.3f} ({len(ours)} pairs) | {p_theirs:.3f} ({len(theirs)} pairs) |"
    )
    timing = ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items())
    print(f"Seconds: Loupe {timing}; Datalab {their_seconds:.1f} s")


def scale(n: int) -> None:
    """The lexical pass alone on n short texts: time and peak memory."""
    words: list[str] = []
    for path in sorted(FORTUNES.iterdir()):
        if path.is_file() and not path.suffix:
            words += path.read_text(errors="replace").split()
    rng = np.random.default_rng(SEED)
    lengths = rng.integers(8, 30, n)
    starts = rng.integers(0, len(words) - 40, n)
    texts = [
        " ".join(words[s : s + m]) for s, m in zip(starts.tolist(), lengths.tolist(), strict=True)
    ]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    pairs = dup.text_pairs(texts)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        f"lexical pass on {n:,} texts of {np.mean([len(t) for t in texts]):.0f} characters on "
        f"average: {seconds:.1f} s, {len(pairs):,} pairs; peak memory {peak / 1024:.0f} MB "
        f"({(peak - before) / 1024:.0f} MB above the texts)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, help="time the lexical pass on this many texts")
    args = parser.parse_args()
    if args.scale:
        scale(args.scale)
        return
    texts, vectors, origin, kind_of = text_dataset()
    report("Text (fortunes, MiniLM)", vectors, origin, kind_of, texts=texts)
    pictures, vectors, origin, kind_of = image_dataset()
    report("Images (Adwaita icons, pixels-pca)", vectors, origin, kind_of, images=pictures)


if __name__ == "__main__":
    main()
