"""`python manage.py demo` on a fresh install: everything starts, logins work, Ctrl-C stops it all."""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import psutil
import pytest
from django.conf import settings

pytestmark = pytest.mark.worker


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_env(var_dir: Path) -> dict[str, str]:
    """The environment of a newcomer: no database, broker or secret configured."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "DATABASE_URL",
            "CELERY_BROKER_URL",
            "SECRET_KEY",
            "DEBUG",
            "DJANGO_ALLOW_ASYNC_UNSAFE",
        }
    }
    env["LOUPE_VAR_DIR"] = str(var_dir)
    return env


def start_demo(var_dir: Path, port: int, log: Path) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "manage.py", "demo", "--port", str(port), "--concurrency", "1"],
        cwd=settings.BASE_DIR,
        env=fresh_env(var_dir),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        text = log.read_text()
        if "Press Ctrl-C to stop." in text and re.search(r"^  viewer\s+\S+$", text, re.M):
            return process, text
        if process.poll() is not None:
            pytest.fail(f"demo exited early:\n{text}")
        time.sleep(0.5)
    process.kill()
    pytest.fail(f"demo did not start:\n{log.read_text()}")


def stop_demo(process: subprocess.Popen) -> str:
    children = psutil.Process(process.pid).children(recursive=True)
    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)
    gone, alive = psutil.wait_procs(children, timeout=20)
    assert not alive, f"still running after Ctrl-C: {alive}"
    return ""


def postgres_running(var_dir: Path) -> bool:
    pid_file = var_dir / "postgres" / "postmaster.pid"
    return pid_file.exists() and psutil.pid_exists(int(pid_file.read_text().split()[0]))


def logins(banner: str) -> dict[str, str]:
    return dict(
        re.findall(r"^  (owner|manager|scientist|reviewer|vendor|viewer)\s+(\S+)$", banner, re.M)
    )


def log_in(base: str, username: str, password: str, then: str = "") -> tuple[int, str]:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(base + "accounts/login/").read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    data = urllib.parse.urlencode(
        {"csrfmiddlewaretoken": token, "username": username, "password": password}
    )
    request = urllib.request.Request(
        base + "accounts/login/", data=data.encode(), headers={"Referer": base}
    )
    response = opener.open(request)
    if then:
        response = opener.open(base + then)
    return response.status, response.geturl() + "\n" + response.read().decode()


def signed_in_get(base: str, username: str, password: str, path: str) -> tuple[int, str]:
    """A page as a signed-in user, error statuses included."""
    try:
        status, page = log_in(base, username, password, then=path)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    return status, page


def api_get(base: str, key: str, path: str):
    request = urllib.request.Request(base + path, headers={"Authorization": f"Token {key}"})
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def demo_scored(base: str, key: str, timeout: float = 240) -> bool:
    project = api_get(base, key, "api/projects/")["results"][0]
    dataset = api_get(base, key, f"api/projects/{project['id']}/datasets/")["results"][0]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = api_get(base, key, f"api/datasets/{dataset['id']}/scoring-runs/")["results"]
        if runs and runs[0]["status"] == "done":
            return runs[0]["summary"]["likely_mislabeled"] > 0
        assert not runs or runs[0]["status"] in ("queued", "running"), runs[0]
        time.sleep(2)
    return False


def demo_rule_fired(base: str, key: str, timeout: float = 60) -> bool:
    """The demo's after-scoring rule tagged what the first scoring run flagged."""
    project = api_get(base, key, "api/projects/")["results"][0]
    dataset = api_get(base, key, f"api/projects/{project['id']}/datasets/")["results"][0]
    rules = api_get(base, key, f"api/datasets/{dataset['id']}/rules/")["results"]
    rule = next(r for r in rules if r["name"] == "Tag likely mislabelled")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = api_get(base, key, f"api/rules/{rule['id']}/runs/")["results"]
        if runs:
            return runs[0]["status"] == "done" and runs[0]["acted_on"] == runs[0]["matched"] > 0
        time.sleep(1)
    return False


def test_demo_runs_the_whole_product_and_keeps_data_across_runs(tmp_path):
    var_dir = tmp_path / "var"
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    process, banner = start_demo(var_dir, port, tmp_path / "demo1.log")
    try:
        passwords = logins(banner)
        assert set(passwords) == {"owner", "manager", "scientist", "reviewer", "vendor", "viewer"}
        assert len(set(passwords.values())) == 6  # generated, not a fixed default
        assert f"Loupe is running at {base}" in banner
        with urllib.request.urlopen(base + "healthz") as response:
            assert response.status == 200
        for username in ("owner", "vendor"):
            status, page = log_in(base, username, passwords[username])
            assert status == 200 and "/projects/" in page.splitlines()[0] and "Demo project" in page
        # The vendor login has a batch waiting in the demo project.
        _status, page = log_in(base, "vendor", passwords["vendor"], then="projects/demo/")
        assert "Phone transcripts: check the label" in page
        # Run as deployed (DEBUG off): a mistyped address gets Loupe's own 404 page with the
        # navigation and a way back, not Django's debug page; static files are still served.
        status, page = signed_in_get(base, "viewer", passwords["viewer"], "projects/demo/nope/")
        assert status == 404 and "This page doesn't exist or you can't see it" in page, page[:500]
        assert 'aria-label="Main"' in page and "data-back" in page
        assert "Django tried these URL patterns" not in page
        # A page the viewer's role may not open gets the 403 page, likewise.
        status, page = signed_in_get(base, "viewer", passwords["viewer"], "reports/projects/demo/")
        assert status == 403 and "You don't have access to this page" in page
        stylesheet = re.search(r'<link rel="stylesheet" href="([^"]+)"', page).group(1)
        assert re.fullmatch(r"/static/css/loupe\.[0-9a-f]{12}\.css", stylesheet), stylesheet
        with urllib.request.urlopen(base + stylesheet.lstrip("/")) as response:
            assert response.status == 200 and b".topbar" in response.read()
        # A management command run beside the demo shares the same embedded database.
        command = subprocess.run(
            [sys.executable, "manage.py", "create_api_token", "owner"],
            cwd=settings.BASE_DIR,
            env=fresh_env(var_dir),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert command.returncode == 0, command.stderr
        key = command.stdout.strip().splitlines()[-1]
        request = urllib.request.Request(
            base + "api/projects/", headers={"Authorization": f"Token {key}"}
        )
        with urllib.request.urlopen(request) as response:
            assert response.status == 200
        assert postgres_running(var_dir)  # the command's exit did not stop the demo's database
        # The demo dataset arrives with a scoring run, which the demo's own worker finishes.
        assert demo_scored(base, key), "the demo dataset's first scoring run did not finish"
        assert demo_rule_fired(base, key), "the demo's rule did not act after the scoring run"
    finally:
        stop_demo(process)
    assert not postgres_running(var_dir), "Ctrl-C must stop the database too"
    # The terminal stays readable: no worker banner, no line per request, logins last.
    terminal = (tmp_path / "demo1.log").read_text().split("Stopping the web server")[0]
    assert "[config]" not in terminal and '"GET /' not in terminal, terminal
    assert "WARNING" not in terminal and "Traceback" not in terminal, terminal
    banner_end = terminal.split("Press Ctrl-C to stop.")[1].strip().splitlines()
    assert banner_end[0].startswith("Logins") and len(banner_end) >= 7, banner_end
    assert [line.split()[0] for line in banner_end[1:7]] == [*passwords]

    process, banner = start_demo(var_dir, port, tmp_path / "demo2.log")
    try:
        assert logins(banner) == passwords  # same install, same logins, data kept
        request = urllib.request.Request(
            base + "api/projects/", headers={"Authorization": f"Token {key}"}
        )
        with urllib.request.urlopen(request) as response:
            assert b'"slug":"demo"' in response.read()
    finally:
        stop_demo(process)
    assert not postgres_running(var_dir)


def demo_processes(demo: subprocess.Popen) -> list[psutil.Process]:
    """Everything the demo started, once the worker has forked its pool and beat: its
    children, theirs, and whatever shares their process groups."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        processes = psutil.Process(demo.pid).children(recursive=True)
        with contextlib.suppress(psutil.NoSuchProcess):  # a short-lived one went meanwhile
            worker = [p for p in processes if p.ppid() == demo.pid and "celery" in p.cmdline()]
            if worker and len(worker[0].children()) >= 2:  # the pool's one process and beat
                break
        time.sleep(0.5)
    processes = still_running(processes)
    groups = {os.getpgid(p.pid) for p in processes} - {os.getpgid(demo.pid)}
    for p in psutil.process_iter():
        try:
            if os.getpgid(p.pid) in groups and p not in processes:
                processes.append(p)
        except (ProcessLookupError, psutil.Error):
            pass
    return processes


def still_running(processes: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for p in processes:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p)
        except psutil.NoSuchProcess:
            pass
    return alive


@contextlib.contextmanager
def demo_running(var_dir: Path, log: Path):
    """A started demo and all it started; whatever a failing test leaves running is killed."""
    process, _banner = start_demo(var_dir, free_port(), log)
    processes = demo_processes(process)
    try:
        yield process, processes
    finally:
        if process.poll() is None:
            process.kill()
        for p in still_running(processes):
            p.kill()


@pytest.fixture(scope="module")
def demo_var(tmp_path_factory) -> Path:
    """One install for the stop tests: the first start migrates, the later ones reuse it."""
    return tmp_path_factory.mktemp("demo") / "var"


def test_a_taken_port_is_an_error_before_anything_starts(tmp_path):
    var_dir = tmp_path / "var"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "manage.py", "demo", "--port", str(port)],
            cwd=settings.BASE_DIR,
            env=fresh_env(var_dir),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode != 0
    assert f"127.0.0.1:{port}" in result.stderr and "in use" in result.stderr
    assert "Logins" not in result.stdout and "Starting" not in result.stdout
    assert not (var_dir / "postgres" / "postmaster.pid").exists()  # no database started


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_stop_signal_stops_every_process_and_the_database(sig, demo_var, tmp_path):
    with demo_running(demo_var, tmp_path / "demo.log") as (process, processes):
        assert len(processes) >= 4, processes  # worker, its pool and beat, web server
        process.send_signal(sig)
        assert process.wait(timeout=90) == 0
        psutil.wait_procs(processes, timeout=5)
        assert still_running(processes) == []
    assert not postgres_running(demo_var)


def test_a_killed_worker_stops_the_demo_and_everything_it_started(demo_var, tmp_path):
    """The demo stops rather than restarting the worker, and says why."""
    log = tmp_path / "demo.log"
    with demo_running(demo_var, log) as (process, processes):
        worker = next(p for p in psutil.Process(process.pid).children() if "celery" in p.cmdline())
        assert len(worker.children()) >= 2  # its pool and beat, left behind by a kill
        worker.kill()
        assert process.wait(timeout=90) != 0
        assert "The worker exited" in log.read_text()
        psutil.wait_procs(processes, timeout=5)
        assert still_running(processes) == []
    assert not postgres_running(demo_var)
