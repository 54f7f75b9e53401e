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
    assert settings.CELERY_BROKER_URL == "filesystem://"
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
