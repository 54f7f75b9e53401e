"""Run the whole product on this machine: database, migrations, demo data, a worker, the web server."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from apps.config import embedded
from apps.demo.services import DEMO_DATASET, demo_dataset_ensure, demo_project_ensure

STOP_TIMEOUT = 15  # seconds each group has to stop on SIGTERM before it is killed


def _port_taken(host: str, port: int) -> OSError | None:
    """Bind where runserver will, as it will (address reuse on), and let go at once."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        return exc
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            return exc
    return None


def _group_members(pgid: int) -> list[psutil.Process]:
    """Live processes of a process group. Zombies count as gone: they hold nothing."""
    members = []
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                members.append(process)
        except (ProcessLookupError, psutil.Error):
            pass
    return members


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def stop_children(children: list[subprocess.Popen], timeout: float = STOP_TIMEOUT) -> None:
    """Stop each child with everything it started, even when the child itself died first.

    Every child leads a process group of its own (start_new_session), and its own children
    (the worker's pool and beat) stay in it: signalling the group reaches them after their
    parent is gone, where signalling the child alone would leave them running as orphans.
    """
    for child in children:
        _signal_group(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for child in children:
        while time.monotonic() < deadline:
            child.poll()  # reap our own child, or it lingers as a zombie
            if not _group_members(child.pid):
                break
            time.sleep(0.2)
    for child in children:
        for process in _group_members(child.pid):
            with contextlib.suppress(psutil.Error):
                process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=5)
        psutil.wait_procs(_group_members(child.pid), timeout=5)


def deployed_env(host: str) -> dict[str, str]:
    """The settings the demo's web server and worker run with: DEBUG off, as deployed, so a
    mistyped address shows Loupe's own 404 page and static files come from whitenoise; plain
    HTTP on this machine, so no redirect to HTTPS and no secure-only cookies. What this
    install's local.env sets for DEBUG is for `runserver`; the others yield to the environment."""
    hosts = ["localhost", "127.0.0.1", "[::1]"]
    if host not in ("0.0.0.0", "::", *hosts):  # noqa: S104 - compared, not bound
        hosts.append(f"[{host}]" if ":" in host else host)
    chosen = {
        "ALLOWED_HOSTS": ",".join(hosts),
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "SECURE_HSTS_SECONDS": "0",
    }
    return {"DEBUG": "false", **{k: os.environ.get(k, v) for k, v in chosen.items()}}


class Command(BaseCommand):
    help = "Start Loupe with its embedded defaults and a demo project. Ctrl-C stops everything."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--concurrency", type=int, default=2, help="Worker processes (default 2)."
        )
        parser.add_argument(
            "--debug",
            action="store_true",
            help="Run with DEBUG on (Django's error pages, static files from the apps' folders) "
            "instead of as deployed.",
        )

    def handle(self, *args, host: str, port: int, concurrency: int, debug: bool, **options):
        # Before anything starts or is printed: with the port taken, the banner and the
        # passwords would describe a server that is not ours.
        taken = _port_taken(host, port)
        if taken is not None:
            raise CommandError(
                f"Cannot listen on {host}:{port}: {taken.strerror or taken}. Is another server "
                "using it? Stop it or choose another port with --port."
            )
        children: list[subprocess.Popen] = []
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            self._run(host, port, concurrency, debug, children, lambda: stopping)
        finally:
            self.stdout.write("\nStopping the web server, the worker and the database…")
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut this short
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            stop_children(children)
            from django.db import connections

            connections.close_all()
            embedded.stop()
            self.stdout.write(
                "Stopped. Run `python manage.py demo` again to pick up where you left off."
            )

    def _run(self, host, port, concurrency, debug, children, stopping) -> None:
        self.stdout.write("Starting the database and applying migrations…")
        call_command("migrate", interactive=False, verbosity=0)
        project, passwords = demo_project_ensure(
            credentials_path=embedded.var_dir() / "demo-credentials.json"
        )
        if demo_dataset_ensure(project=project, by=project.created_by, folder=embedded.var_dir()):
            self.stdout.write(f"Loaded the demo dataset “{DEMO_DATASET}”.")
        if stopping():
            return

        base = Path(settings.BASE_DIR)
        worker = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers",
            "--quiet",  # no start-up banner: the demo prints its own
            "worker",
            "--loglevel",
            "WARNING",
        ]
        # -B: the demo's one worker also runs the periodic sweeps (deploy/ runs a beat of its own).
        worker += ["--concurrency", str(concurrency), "--hostname", "demo@%h", "-B"]
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/"  # noqa: S104
        # Links in the e-mails the worker sends point at this demo.
        env = {**os.environ, "LOUPE_SITE_URL": os.environ.get("LOUPE_SITE_URL") or url}
        if debug:
            env["DEBUG"] = "true"
        else:
            env.update(deployed_env(host))
            self.stdout.write("Collecting static files…")
            collect = [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"]
            if subprocess.run(collect, cwd=base, env=env, check=False).returncode:  # noqa: S603
                if stopping():
                    return
                raise CommandError("Collecting the static files failed; see the output above.")
        children.append(subprocess.Popen(worker, cwd=base, env=env, start_new_session=True))  # noqa: S603
        # Static files come from whitenoise (collected above), as in a deployment; with --debug,
        # from the apps' folders through the development server.
        web = [sys.executable, "manage.py", "runserver", "--noreload", f"{host}:{port}"]
        # Neither the development server's greeting (stdout) nor a line per request on the
        # terminal; errors still show (stderr).
        web_env = {"LOG_REQUESTS": "false", **env}
        children.append(
            subprocess.Popen(  # noqa: S603
                web, cwd=base, env=web_env, stdout=subprocess.DEVNULL, start_new_session=True
            )
        )
        if not self._wait_until_up(url + "healthz", children, stopping):
            return
        self._banner(url, project, passwords)
        # A child that dies takes the demo down with it, rather than being restarted:
        # the others are stopped too, and the message says which one went.
        while not stopping():
            for child in children:
                if child.poll() is not None:
                    name = "The worker" if "celery" in child.args else "The web server"
                    raise CommandError(
                        f"{name} exited with status {child.returncode}; stopping everything."
                    )
            time.sleep(0.5)

    def _wait_until_up(self, url: str, children: list[subprocess.Popen], stopping) -> bool:
        """True once the server answers; False when asked to stop first."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if stopping():
                return False
            if any(c.poll() is not None for c in children):
                raise CommandError("A process failed to start; see the output above.")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own server
                    if response.status == 200:
                        return True
            except OSError:
                pass
            time.sleep(0.5)
        raise CommandError(f"Loupe did not answer at {url} within 60 seconds.")

    def _banner(self, url: str, project, passwords: dict[str, str]) -> None:
        out = self.stdout
        out.write("")
        out.write(self.style.SUCCESS(f"Loupe is running at {url}"))
        out.write(f"Demo project: {url}projects/{project.slug}/")
        out.write(f"API docs: {url}api/docs/   Health: {url}healthz")
        if getattr(settings, "EMAIL_FILE_PATH", None):
            out.write(f"E-mails it sends are written to {settings.EMAIL_FILE_PATH}/")
        out.write("Press Ctrl-C to stop.")
        out.write("")
        out.write("Logins (generated for this install; kept in var/demo-credentials.json):")
        for username, password in passwords.items():
            out.write(f"  {username:<10} {password}")
