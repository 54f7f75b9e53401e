"""The code base itself: lint-clean, and every model change has its migration."""

import ast
import os
import re
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


PROJECT_PACKAGES = ("apps", "workers", "loupe_client")


def _project_imports_in_functions(path: Path) -> list[ast.Import | ast.ImportFrom]:
    """Imports of the project's own modules inside function bodies (not under TYPE_CHECKING)."""
    found: list[ast.Import | ast.ImportFrom] = []

    def own(node: ast.Import | ast.ImportFrom) -> bool:
        if isinstance(node, ast.ImportFrom):
            return node.level > 0 or (node.module or "").split(".")[0] in PROJECT_PACKAGES
        return any(alias.name.split(".")[0] in PROJECT_PACKAGES for alias in node.names)

    def walk(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                if in_function and own(child):
                    found.append(child)
            elif isinstance(child, ast.If) and ast.unparse(child.test).endswith("TYPE_CHECKING"):
                continue
            else:
                walk(
                    child, in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
                )

    walk(ast.parse(path.read_text(), filename=str(path)), False)
    return found


def test_imports_inside_functions_say_why():
    """An import of the project's own code inside a function hides a dependency (often a circle
    dodged): each one says why in a comment, on the line above (or above the block of imports
    it opens) or at its end. The few that remain are AppConfig.ready() wiring."""
    files = [
        path
        for base in ("apps", "workers", "clients/python/loupe_client")
        for path in sorted((ROOT / base).rglob("*.py"))
        if "migrations" not in path.parts
    ]
    counted, silent = 0, []
    for path in files:
        lines = path.read_text().splitlines()
        for node in _project_imports_in_functions(path):
            counted += 1
            end = node.end_lineno or node.lineno
            above = node.lineno - 2  # 0-based index of the line above the import
            # A comment over a block of imports speaks for each import of the block.
            while above >= 0 and lines[above].lstrip().startswith(("from ", "import ", ")")):
                above -= 1
            commented = "#" in lines[end - 1] or (
                above >= 0 and lines[above].lstrip().startswith("#")
            )
            if not commented:
                silent.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node)}")
    assert not silent, (
        f"{len(silent)} of the {counted} imports of the project's own modules inside function "
        "bodies give no reason in a comment; move them to the top of the module, or say why "
        "they cannot be there:\n" + "\n".join(silent)
    )
    # Fewer than 20 in all: such imports stay the exception, not a habit.
    assert counted < 20, f"{counted} imports of the project's own modules inside functions"


def test_web_process_does_not_load_the_engine_libraries():
    """The web process imports the engine for its constants and small helpers; scikit-learn,
    SciPy and faiss load only in the worker functions that use them (seconds of start-up and
    hundreds of MB per web worker otherwise)."""
    code = """
import importlib, pkgutil, sys
import django
django.setup()
import apps, apps.config.urls
for app in pkgutil.iter_modules(apps.__path__):
    for part in ("views", "api", "urls"):
        try:
            module = importlib.import_module(f"apps.{app.name}.{part}")
        except ModuleNotFoundError as exc:
            if exc.name != f"apps.{app.name}.{part}":
                raise
            continue
        for sub in pkgutil.iter_modules(getattr(module, "__path__", [])):
            importlib.import_module(f"{module.__name__}.{sub.name}")
print(" ".join(sorted({"sklearn", "scipy", "faiss"} & set(sys.modules))))
"""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "apps.config.settings",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "clients" / "python")]),
    }
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [], result.stdout


# What a branch on a dataset's task looks like: `task == …`, `.task in …`, a task type named.
TASK_BRANCH = re.compile(
    r"\btask\s*(==|!=)|\.task\s+(not\s+)?in\b|\bTask\.(MULTILABEL|DETECTION|NER)\b"
    r"|[\"'](multilabel|detection|ner)[\"']\s*(==|!=|in\b)|(==|!=)\s*[\"'](multilabel|detection|ner)[\"']"
)


def test_no_task_branches_outside_the_registry():
    """Each task type's rules live in apps/annotations, one module per concern, and the rest
    asks `annotations.of(dataset).<concern>`: a task compared anywhere else is a rule that the
    next task type would have to find and edit by hand. The scoring adapters per task
    (apps/quality/pipeline/by_task) are the one other place allowed to pick by task."""
    allowed = (ROOT / "apps" / "annotations", ROOT / "apps" / "quality" / "pipeline" / "by_task")
    files = [
        path
        for base, pattern in (
            ("apps", "*.py"),
            ("workers", "*.py"),
            ("templates", "*.html"),
            ("apps/config/static/js", "*.js"),
        )
        for path in sorted((ROOT / base).rglob(pattern))
        if not path.is_relative_to(allowed[0]) and not path.is_relative_to(allowed[1])
    ]
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if TASK_BRANCH.search(line)
    ]
    assert not found, "Ask the task registry instead:\n" + "\n".join(found)
