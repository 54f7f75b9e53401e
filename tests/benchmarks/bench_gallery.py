"""Gallery benchmark: the first screen of the gallery of a 100,000-image dataset in Chromium, from
navigation to every thumbnail in sight loaded and decoded, with the thumbnail cache cold and warm.

    python tests/benchmarks/bench_gallery.py --work /tmp/bench-gallery [--rows 100000 --rounds 5]

Set-up (skipped when --work already holds it), on a fresh embedded database:

* Scenes: each of scikit-learn's 1,797 handwritten digits (8 x 8) drawn as a 384 x 384 JPEG
  scene: the digit upscaled and turned, in its own colours on a tilted gradient, with grain
  (about 14 KB each).
* Files: every sample gets a file of its own, `scenes/<n>.jpg`, a hard link to scene n mod 1,797.
  The thumbnail cache is keyed by the file's path, so each sample's thumbnail is made from its
  own file on first request, exactly as with 100,000 different pictures; the links only spare
  the disk (1.4 GB of copies). Consecutive samples point at different scenes, so no screen
  shows two samples of one scene.
* Samples: 100,000 rows written by SQL (label: the digit; split: 80 % train, 20 % test), and a
  finished scoring run with random scores (tests/benchmarks/bench_explorer.py's `_scores`: 5 %
  flagged likely mislabelled), so every cell carries its badges. A real import of 100,000
  images through an archive gives the same rows.

Timed: the site runs as in production (gunicorn with deploy/gunicorn.conf.py, DEBUG off,
static files collected). For each page of PAGES and each round, a fresh browser context (an
empty HTTP cache, signed in) opens the page at 1440 x 900; the time is `performance.now()` (from
the start of navigation) once the grid is drawn and every thumbnail intersecting the grid's
viewport is complete and `decode()`d. "cold": the dataset's thumbnail folder is deleted first,
so each thumbnail on screen is made from its image on request; "warm": the same page again,
thumbnails cached on the server (not in the browser: a new context each time). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "benchmarks"))
sys.path.insert(0, str(ROOT))
from bench_setup import fresh_database, manage, work_folder  # noqa: E402

SCENE = 384
PASSWORD = "bench gallery password"
WARM_UP = 12  # requests that reach every gunicorn worker before anything is timed
PAGES = {
    "all, by id": "",
    "all, mislabel score highest first": "?ordering=-mislabel_score",
    "label 3, outlier score highest first": "?q="
    + quote(json.dumps({"field": "label", "op": "=", "value": "3"}))
    + "&ordering=-outlier_score",
}
FIRST_SCREEN = """async () => {
  const frame = () => new Promise((r) => requestAnimationFrame(r));
  const grid = () => document.getElementById("gallery");
  while (!grid() || grid().dataset.shown !== "1") await frame();
  const gallery = grid();
  const box = gallery.getBoundingClientRect();
  const inSight = () => [...gallery.querySelectorAll(".gcell:not([hidden]) img")].filter((img) => {
    const r = img.getBoundingClientRect();
    return r.bottom > box.top && r.top < box.bottom && r.right > box.left && r.left < box.right;
  });
  for (;;) {
    const imgs = inSight();
    if (imgs.length && imgs.every((img) => img.complete && img.naturalWidth > 0)) {
      await Promise.all(imgs.map((img) => img.decode()));
      const done = performance.now();
      while (gallery.dataset.ready !== "1") await frame();
      const ready = performance.now();
      const res = performance.getEntriesByType("resource");
      const order = res.find((e) => e.name.includes("/gallery/order/"));
      const thumbs = res.filter((e) => e.name.includes("/thumbs/"));
      const nav = performance.getEntriesByType("navigation")[0];
      return {
        ms: done,
        whole_order_ms: ready,
        page_ms: nav.responseEnd,
        ready_ms: nav.domContentLoadedEventEnd,
        order_start_ms: order ? order.startTime : null,
        thumbnails: imgs.length,
        order_ms: order ? order.responseEnd - order.startTime : null,
        order_bytes: order ? order.transferSize : null,
        order_done_ms: order ? order.responseEnd : null,
        thumbs_requested: thumbs.length,
        slowest_thumb_ms: Math.max(...thumbs.map((e) => e.responseEnd - e.requestStart)),
      };
    }
    await frame();
  }
}"""


def scenes(folder: Path) -> tuple[int, list[int]]:
    """The digit scenes, written once; their count and each one's digit."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:48] / 48.0
    for i, digit in enumerate(digits.images):
        path = folder / f"{i}.jpg"
        ink = rng.uniform(0.2, 1, 3)
        paper = rng.uniform(0, 0.6, 3)
        angle = rng.uniform(0, 2 * np.pi)
        tilt = (np.cos(angle) * xx + np.sin(angle) * yy)[..., None]
        background = paper * (1 - tilt) + ink * tilt * 0.5
        stroke = np.kron(digit / 16.0, np.ones((6, 6)))[..., None]
        small = (background * (1 - stroke) + ink * stroke) * 255 + rng.normal(0, 6, (48, 48, 3))
        if path.exists():
            continue
        picture = (
            Image.fromarray(np.clip(small, 0, 255).astype(np.uint8))
            .resize((SCENE, SCENE), Image.Resampling.BICUBIC)
            .rotate(
                rng.uniform(-15, 15),
                resample=Image.Resampling.BILINEAR,
                fillcolor=tuple(int(c * 255) for c in paper),
            )
        )
        picture.save(path, format="JPEG", quality=85)
    return len(digits.images), [int(t) for t in digits.target]


def setup(work: Path, rows: int) -> dict:
    state_file = work / "gallery-state.json"
    if state_file.exists():
        os.environ["LOUPE_VAR_DIR"] = str(work / "var")
        _django()
        return json.loads(state_file.read_text())
    env = fresh_database(work)
    os.environ["LOUPE_VAR_DIR"] = env["LOUPE_VAR_DIR"]
    _django()
    from bench_explorer import _scores
    from django.conf import settings
    from django.db import connection

    from apps.accounts.models import User
    from apps.datasets.models import Dataset, Modality
    from apps.datasets.selectors import media_folder
    from apps.projects.models import Membership, Project

    started = time.monotonic()
    count, targets = scenes(work / "scenes")
    scenes_seconds = time.monotonic() - started
    user = User.objects.get(username="bench")
    user.set_password(PASSWORD)
    user.save()
    project = Project.objects.create(name="Gallery bench", slug="gallery-bench")
    Membership.objects.create(project=project, user=user, role="owner")
    dataset = Dataset.objects.create(
        project=project,
        name="digits",
        modality=Modality.IMAGE,
        labels=[str(d) for d in range(10)],
    )
    started = time.monotonic()
    folder = Path(settings.MEDIA_ROOT) / media_folder(dataset) / "scenes"
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(rows):
        target = folder / f"{n}.jpg"
        if not target.exists():
            os.link(work / "scenes" / f"{n % count}.jpg", target)
    with connection.cursor() as cur:
        cur.execute(
            """INSERT INTO datasets_sample (dataset_id, external_id, split, label, first_label,
                   added_in, text, image, metadata, active, created_at)
               SELECT %s, 'digit-' || n, CASE WHEN n %% 5 = 4 THEN 'test' ELSE 'train' END,
                      (%s::int[])[1 + n %% %s]::text, NULL, 1, '',
                      'scenes/' || n || '.jpg', '{}', true, now()
               FROM generate_series(0, %s - 1) AS n""",
            [dataset.pk, targets, count, rows],
        )
    files_seconds = time.monotonic() - started
    scores_seconds = _scores(dataset)
    state = {
        "dataset": dataset.pk,
        "rows": rows,
        "scenes": count,
        "scenes_seconds": round(scenes_seconds, 1),
        "files_and_rows_seconds": round(files_seconds, 1),
        "score_rows_seconds": scores_seconds,
    }
    state_file.write_text(json.dumps(state))
    return state


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apps.config.settings")
    import django

    django.setup()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(work: Path, port: int) -> subprocess.Popen:
    """The site as in production: gunicorn with the project's settings, DEBUG off, over HTTP,
    on this process's embedded database through DATABASE_URL, as a server reaches its own (the
    embedded mode's start-up is made for one thread per process, not gunicorn's threads)."""
    import secrets

    from apps.config.embedded import database_url

    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url(),
        SECRET_KEY=secrets.token_urlsafe(50),
        LOUPE_VAR_DIR=str(work / "var"),
        DEBUG="false",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="false",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        SECURE_HSTS_SECONDS="0",
        STATIC_ROOT=str(work / "static"),
        PORT=str(port),
        LOG_LEVEL="WARNING",
    )
    manage("collectstatic", "--noinput", env=env)
    log = (work / "gunicorn.log").open("a")
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "apps.config.wsgi",
            "-c",
            str(ROOT / "deploy" / "gunicorn.conf.py"),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
    )
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("gunicorn did not start")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def summary(ms: list[float]) -> dict:
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms)),
        "p95_ms": round(percentile(ms, 95)),
        "max_ms": round(max(ms)),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--work", help="Folder for the scenes and the database (kept for re-runs).")
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
    args = parser.parse_args()
    work = work_folder(args.work)
    state = setup(work, args.rows)

    from django.conf import settings
    from playwright.sync_api import sync_playwright

    from apps.datasets.models import Dataset
    from apps.datasets.thumbnails import thumbnails_folder

    dataset = Dataset.objects.get(pk=state["dataset"])
    thumbs = Path(settings.MEDIA_ROOT) / thumbnails_folder(dataset)
    port = free_port()
    server = serve(work, port)
    base = f"http://127.0.0.1:{port}"
    results: dict = {"setup": state, "pages": {}}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=args.chromium, args=["--no-sandbox", "--disable-gpu"]
            )
            login = browser.new_context(base_url=base)
            login.set_default_timeout(180_000)
            page = login.new_page()
            # Every worker process loads Django on its first request: ask each once before.
            for _ in range(WARM_UP):
                page.goto("/accounts/login/")
            page.goto("/accounts/login/")
            page.get_by_label("Username").fill("bench")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url("**/projects/")
            signed_in = login.storage_state()
            login.close()

            def first_screen(url: str) -> dict:
                context = browser.new_context(
                    base_url=base, storage_state=signed_in, viewport={"width": 1440, "height": 900}
                )
                context.set_default_timeout(180_000)
                page = context.new_page()
                page.goto(url, wait_until="commit")
                found = page.evaluate(FIRST_SCREEN)
                count = page.locator("#gallery").get_attribute("data-count")
                context.close()
                found["count"] = int(count or 0)
                return found

            gallery = f"/datasets/{dataset.pk}/gallery/"
            for _ in range(WARM_UP // 2):  # the workers' imports and the database's buffers
                first_screen(gallery)
            timings: dict = {name: {"cold": [], "warm": []} for name in PAGES}
            for _ in range(args.rounds):
                for name, params in PAGES.items():
                    shutil.rmtree(thumbs, ignore_errors=True)
                    timings[name]["cold"].append(first_screen(gallery + params))
                    timings[name]["warm"].append(first_screen(gallery + params))
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    every = {"cold": [], "warm": []}
    for name, found in timings.items():
        results["pages"][name] = {
            "matches": found["cold"][0]["count"],
            "thumbnails_in_sight": found["cold"][0]["thumbnails"],
            "thumbnails_requested": found["cold"][0]["thumbs_requested"],
            **{
                cache: {
                    **summary([r["ms"] for r in runs]),
                    "order_request_p50_ms": round(statistics.median(r["order_ms"] for r in runs)),
                    "order_bytes": runs[0]["order_bytes"],
                    "slowest_thumbnail_p50_ms": round(
                        statistics.median(r["slowest_thumb_ms"] for r in runs)
                    ),
                }
                for cache, runs in found.items()
            },
            # Each round's milestones, from the start of navigation: the page's HTML in, the
            # DOM ready, every thumbnail in sight decoded, the whole order asked and in.
            "rounds": {
                cache: [
                    [
                        round(r[k])
                        for k in ("page_ms", "ready_ms", "ms", "order_start_ms", "order_done_ms")
                    ]
                    for r in runs
                ]
                for cache, runs in found.items()
            },
        }
        for cache in every:
            every[cache] += [r["ms"] for r in found[cache]]
    results["all_pages"] = {cache: summary(ms) for cache, ms in every.items()}
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
