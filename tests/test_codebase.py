"""The code base itself: lint-clean, and every model change has its migration."""

import subprocess
import sys
from pathlib import Path

from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing():
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--quiet", str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_migrations_are_up_to_date(db):
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_csv_is_written_only_through_the_neutralising_writer():
    """`apps.core.csv.csv_writer` neutralises formulas; a bare `csv.writer` elsewhere would not."""
    import ast

    bare = []
    for path in sorted([*(ROOT / "apps").rglob("*.py"), *(ROOT / "workers").rglob("*.py")]):
        if path.is_relative_to(ROOT / "apps" / "core"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            writes = (
                isinstance(node, ast.Attribute)
                and node.attr in ("writer", "DictWriter")
                and isinstance(node.value, ast.Name)
                and node.value.id == "csv"
            ) or (
                isinstance(node, ast.ImportFrom)
                and node.module == "csv"
                and {a.name for a in node.names} & {"writer", "DictWriter"}
            )
            if writes:
                bare.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not bare, bare
