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
