"""What the benchmarks share: a work folder, a synthetic Parquet file, a fresh embedded database."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def manage(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )


def work_folder(path: str | None) -> Path:
    work = Path(path or tempfile.mkdtemp(prefix="loupe-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    return work


def parquet(path: Path, *options: str) -> Path:
    """Write the synthetic file once (tests/benchmarks/make_parquet.py with `options`)."""
    if not path.exists():
        subprocess.run(
            [sys.executable, str(ROOT / "tests/benchmarks/make_parquet.py"), str(path), *options],
            check=True,
        )
    return path


def fresh_database(work: Path) -> dict:
    """The environment of an embedded database under `work`, migrated, with a user `bench`."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SECRET_KEY", "DEBUG")}
    env["LOUPE_VAR_DIR"] = str(work / "var")
    manage("migrate", "--noinput", env=env)
    manage(
        "shell",
        "-c",
        "from apps.accounts.models import User; User.objects.get_or_create(username='bench')",
        env=env,
    )
    return env


def timed_api(username: str = "bench"):
    """A GET on the API as the user (by a fresh token) that returns (milliseconds, body), and
    stops the benchmark on anything but a 200. Needs Django set up."""
    import time

    from django.test import Client

    from apps.accounts.models import User
    from apps.accounts.services import api_token_create

    user = User.objects.get(username=username)
    _token, key = api_token_create(user=user, name=f"bench {time.time_ns()}", by=user)
    client = Client(HTTP_AUTHORIZATION=f"Token {key}", HTTP_HOST="127.0.0.1")

    def get(url: str) -> tuple[float, dict]:
        started = time.perf_counter()
        response = client.get(url)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise SystemExit(f"{url}: {response.status_code} {response.content[:300]!r}")
        return elapsed, response.json()

    return get
