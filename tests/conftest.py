"""Persona fixtures: a project with one member per role, plus an outsider who belongs elsewhere."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from apps.accounts.services import api_token_create
from apps.projects.capabilities import Role
from tests.factories import MembershipFactory, ProjectFactory, UserFactory

PERSONAS = [*Role.values, "outsider"]


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """A test database of this run's own, so two test runs on one machine don't collide."""
    import os

    from django.conf import settings

    test = settings.DATABASES["default"].setdefault("TEST", {})
    test["NAME"] = f"test_{settings.DATABASES['default']['NAME']}_{os.getpid()}"


@pytest.fixture(autouse=True, scope="session")
def test_task_queue():
    """Tasks the tests enqueue go to a queue of this run's own, which only the tests' own
    workers read: a demo worker on the same machine must never run them against its database."""
    import os

    from workers.celery import app

    queue = f"tests-{os.getpid()}"
    app.conf.task_default_queue = queue
    yield queue


@pytest.fixture(autouse=True, scope="session")
def media_root(tmp_path_factory):
    """Files the tests store (uploads, images, text models) and chunked uploads being assembled
    go to folders of this run's own, never to those of a demo on the same machine; workers the
    tests start inherit them."""
    import os

    from django.test import override_settings

    root = tmp_path_factory.mktemp("media")
    uploads = tmp_path_factory.mktemp("uploads")
    os.environ["MEDIA_ROOT"] = str(root)
    os.environ["LOUPE_UPLOAD_DIR"] = str(uploads)
    with override_settings(MEDIA_ROOT=str(root), LOUPE_UPLOAD_DIR=uploads):
        yield root


@pytest.fixture(autouse=True, scope="session")
def live_server_without_nagle():
    """The live test server sends a response's headers and body in two writes; with Nagle's
    algorithm on, a keep-alive client's delayed ACK holds the second for ~40 ms, which made
    every request of the API fuzzing and the browser tests five times slower than its work."""
    from django.core.servers.basehttp import WSGIRequestHandler

    WSGIRequestHandler.disable_nagle_algorithm = True
    yield
    WSGIRequestHandler.disable_nagle_algorithm = False


@dataclass
class Team:
    project: object
    users: dict  # persona -> User
    members: dict  # role -> Membership
    other_project: object

    def user(self, persona: str):
        return self.users[persona]


@pytest.fixture
def team(db) -> Team:
    project = ProjectFactory(name="Cats and dogs", slug="cats-dogs")
    users, members = {}, {}
    for role in Role:
        user = UserFactory(username=f"{role.value}1")
        users[role.value] = user
        members[role.value] = MembershipFactory(project=project, user=user, role=role)
    outsider = UserFactory(username="outsider")
    other = ProjectFactory(name="Other team", slug="other-team")
    MembershipFactory(project=other, user=outsider, role=Role.OWNER)
    users["outsider"] = outsider
    return Team(project=project, users=users, members=members, other_project=other)


@pytest.fixture
def api_as(db):
    """An API client authenticated with a real personal token of the given user."""

    def make(user) -> APIClient:
        client = APIClient()
        if user is not None:
            _token, key = api_token_create(user=user, name="test", by=user)
            client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return client

    return make


@pytest.fixture
def api_session_as(db):
    """An API client signed in with a browser session (no token) as the given user."""

    def make(user) -> APIClient:
        client = APIClient()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def web_as(client):
    """A Django test client logged in as the given user."""

    def make(user):
        client.force_login(user)
        return client

    return make


@dataclass
class WorkerProcess:
    queue: str
    process: object


def database_url_for_tests() -> str:
    """A DATABASE_URL that reaches the test database, for processes the tests start."""
    from django.conf import settings
    from django.db import connection

    name = connection.settings_dict["NAME"]
    if settings.LOCAL_MODE:
        from apps.config import embedded

        return embedded.database_url(name)
    s = connection.settings_dict
    return f"postgres://{s['USER']}:{s['PASSWORD']}@{s['HOST'] or 'localhost'}:{s['PORT'] or 5432}/{name}"


@pytest.fixture
def celery_workers(transactional_db, test_task_queue, monkeypatch):
    """Start real Celery worker processes on the real broker, on a queue of this test's own,
    using the test DB: `celery_workers(2, LOUPE_SCORING_CHUNK_ROWS="100")`. Each call may add
    workers to the same queue; every one is stopped at the end.

    The queue is new for each test: tasks other tests left behind (no worker was reading then)
    must not keep these workers busy.
    """
    import os
    import subprocess
    import sys
    import uuid

    from django.conf import settings

    from apps.config.tasks import ping
    from workers.celery import app

    queue = f"{test_task_queue}-{uuid.uuid4().hex[:8]}"
    monkeypatch.setitem(app.conf, "task_default_queue", queue)
    started: list[subprocess.Popen] = []

    def start(count: int = 1, **extra_env: str) -> list[WorkerProcess]:
        env = {
            **os.environ,
            "DATABASE_URL": database_url_for_tests(),
            "SECRET_KEY": settings.SECRET_KEY,
            "DEBUG": "false",
            "DATABASE_CONN_MAX_AGE": "0",
            **extra_env,
        }
        workers = []
        for _ in range(count):
            own = f"{queue}-{len(started)}"  # to check that this one worker is up
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "workers",
                    "worker",
                    "--queues",
                    f"{queue},{own}",
                    "--concurrency",
                    "1",
                    "--prefetch-multiplier",
                    "1",
                    "--loglevel",
                    "WARNING",
                    "--hostname",
                    f"{own}@%h",
                    "--without-heartbeat",
                    "--without-gossip",
                    "--without-mingle",
                ],
                cwd=settings.BASE_DIR,
                env=env,
                start_new_session=True,  # its own process group: a test can kill the pool too
            )
            started.append(process)
            workers.append((own, WorkerProcess(queue=queue, process=process)))
        # Ready once each has answered a ping through the broker.
        for own, _worker in workers:
            ping.apply_async(args=["ready"], queue=own).get(timeout=90)
        return [worker for _own, worker in workers]

    try:
        yield start
    finally:
        for process in started:
            process.terminate()
        for process in started:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def celery_worker_process(celery_workers):
    """One real Celery worker process (see `celery_workers`)."""
    return celery_workers(1)[0]


@pytest.fixture
def sent_mail(transactional_db, mailoutbox):
    """E-mail goes out after commit, as in production; that needs real transactions."""
    return mailoutbox


# The scored dataset the explorer's tests share (query language, API, map, Chromium).
from tests.datasets.conftest import world  # noqa: E402, F401
from tests.reports.conftest import books  # noqa: E402, F401
