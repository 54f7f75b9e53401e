"""Settings from the environment, the deploy check, the health endpoint and the API schema."""

from __future__ import annotations

import io
import os
import secrets
import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connection
from django.db.utils import OperationalError

from workers.celery import app as celery_app

PRODUCTION_ENV = {
    "DATABASE_URL": "postgres://loupe:pw@db.internal:5432/loupe",
    "DEBUG": "false",
}


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    unset = {"SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "DATABASE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    clean = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_missing_secret_key_with_debug_off_stops_start_up():
    result = run_manage("check", env=PRODUCTION_ENV)
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


@pytest.mark.parametrize(
    "secret_key,message",
    [
        (None, "SECRET_KEY is not set"),
        ("", "SECRET_KEY is not set"),
        ("change-me", "placeholder"),
        ("django-insecure-" + "k" * 40, "placeholder"),
        ("short-but-random-Zq81", "at least 32 characters"),
    ],
)
@pytest.mark.parametrize("debug", ["false", "true"])
def test_outside_local_mode_a_missing_placeholder_or_short_key_stops_start_up(
    secret_key, message, debug
):
    env = {**PRODUCTION_ENV, "DEBUG": debug}
    if secret_key is not None:
        env["SECRET_KEY"] = secret_key
    result = run_manage("check", env=env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_a_worker_threads_setting_that_is_not_a_positive_whole_number_is_refused(value):
    env = {**PRODUCTION_ENV, "SECRET_KEY": "x" * 50, "LOUPE_WORKER_THREADS": value}
    result = run_manage("check", env=env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "LOUPE_WORKER_THREADS" in result.stderr


def test_the_env_example_key_is_refused():
    example = (settings.BASE_DIR / "deploy" / "env.example").read_text()
    placeholder = next(
        line.split("=", 1)[1] for line in example.splitlines() if line.startswith("SECRET_KEY=")
    )
    result = run_manage("check", env={**PRODUCTION_ENV, "SECRET_KEY": placeholder})
    assert result.returncode != 0 and "placeholder" in result.stderr


def test_local_mode_makes_a_key_of_its_own_and_keeps_it(tmp_path):
    read_key = "from django.conf import settings; print(settings.SECRET_KEY)"
    env = {"LOUPE_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "apps.config.settings"}
    keys = []
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "-c", f"import django; django.setup(); {read_key}"],
            cwd=settings.BASE_DIR,
            env={
                **{k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DATABASE_URL"}},
                **env,
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        keys.append(result.stdout.strip())
    assert keys[0] == keys[1] and len(keys[0]) >= 50
    assert f"SECRET_KEY={keys[0]}" in (tmp_path / "local.env").read_text()


def test_deploy_check_passes_once_secret_key_and_allowed_hosts_are_set():
    env = {
        **PRODUCTION_ENV,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "loupe.example.com",
    }
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_a_database_url_that_is_not_postgresql_is_refused():
    env = {**PRODUCTION_ENV, "SECRET_KEY": "x" * 50, "DATABASE_URL": "mysql://u:p@localhost/loupe"}
    result = run_manage("check", env=env)
    assert result.returncode != 0
    assert "DATABASE_URL must point at PostgreSQL" in result.stderr


def test_the_database_is_postgresql_with_pgvector(db):
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        assert cursor.fetchone() is not None


def test_local_mode_uses_the_filesystem_broker_under_var():
    if not settings.LOCAL_MODE:
        pytest.skip("runs against an explicit DATABASE_URL")
    assert settings.CELERY_BROKER_URL == "filesystem://localhost/"
    assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"].startswith(
        str(settings.VAR_DIR)
    )


def test_healthz_is_200_when_database_and_broker_answer(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}


def test_healthz_is_503_when_the_broker_does_not_answer(client, db, monkeypatch):
    monkeypatch.setitem(celery_app.conf, "broker_url", "redis://127.0.0.1:1/0")
    monkeypatch.setitem(celery_app.conf, "broker_transport_options", {})
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["broker"].startswith("error")
    assert response.json()["database"] == "ok"


def test_healthz_is_503_when_the_database_does_not_answer(client, db, monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationalError("connection refused")

    with monkeypatch.context() as patch:  # undone before the test database is torn down
        patch.setattr(connection, "cursor", refuse)
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"].startswith("error")


def test_openapi_schema_and_docs_page(client, db, django_user_model):
    schema = client.get("/api/schema/", headers={"Accept": "application/vnd.oai.openapi+json"})
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/api/projects/", "/api/projects/{id}/", "/api/projects/{id}/members/"} <= paths.keys()
    assert {
        "/api/datasets/{dataset_id}/samples/",
        "/api/datasets/{dataset_id}/samples/bulk/",
        "/api/datasets/{dataset_id}/views/",
    } <= paths.keys()
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    directives = dict(d.strip().split(" ", 1) for d in docs["Content-Security-Policy"].split(";"))
    assert directives["script-src"] == "'self'"


def test_dbshell_reaches_the_embedded_server(db):
    if not settings.LOCAL_MODE:
        pytest.skip("runs against an explicit DATABASE_URL")
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "dbshell",
            "--",
            "-Atc",
            "SELECT current_database()",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "loupe"  # the install's database, not this run's test copy


def test_openapi_schema_generates_without_a_warning(db):
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", stdout=io.StringIO())
