"""Run the whole product on this machine: database, migrations, demo data, a worker, the web server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from apps.config import embedded
from apps.projects.demo import DEMO_DATASET, demo_dataset_ensure, demo_project_ensure


class Command(BaseCommand):
    help = "Start Loupe with its embedded defaults and a demo project. Ctrl-C stops everything."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--concurrency", type=int, default=2, help="Worker processes (default 2)."
        )

    def handle(self, *args, host: str, port: int, concurrency: int, **options):
        self.stdout.write("Starting the database and applying migrations…")
        call_command("migrate", interactive=False, verbosity=0)
        project, passwords = demo_project_ensure(
            credentials_path=embedded.var_dir() / "demo-credentials.json"
        )
        if demo_dataset_ensure(project=project, by=project.created_by, folder=embedded.var_dir()):
            self.stdout.write(f"Loaded the demo dataset “{DEMO_DATASET}”.")

        base = Path(settings.BASE_DIR)
        children: list[subprocess.Popen] = []
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            worker = [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "workers",
                "worker",
                "--loglevel",
                "WARNING",
            ]
            # -B: the demo's one worker also runs the periodic sweeps (deploy/ runs a beat of its own).
            worker += ["--concurrency", str(concurrency), "--hostname", "demo@%h", "-B"]
            url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/"  # noqa: S104
            # Links in the e-mails the worker sends point at this demo.
            env = {**os.environ, "LOUPE_SITE_URL": os.environ.get("LOUPE_SITE_URL") or url}
            children.append(subprocess.Popen(worker, cwd=base, env=env, start_new_session=True))  # noqa: S603
            web = [sys.executable, "manage.py", "runserver", "--noreload", f"{host}:{port}"]
            if not settings.DEBUG:
                web.append("--insecure")  # serve static files without a front proxy
            children.append(subprocess.Popen(web, cwd=base, start_new_session=True))  # noqa: S603
            self._wait_until_up(url + "healthz", children)
            self._banner(url, project, passwords)
            while not stopping:
                for child in children:
                    if child.poll() is not None:
                        raise CommandError(
                            f"{child.args[2:5]} exited with status {child.returncode}."
                        )
                time.sleep(0.5)
        finally:
            self.stdout.write("\nStopping the web server, the worker and the database…")
            for child in children:
                if child.poll() is None:
                    child.terminate()
            for child in children:
                try:
                    child.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
            from django.db import connections

            connections.close_all()
            embedded.stop()
            self.stdout.write(
                "Stopped. Run `python manage.py demo` again to pick up where you left off."
            )

    def _wait_until_up(self, url: str, children: list[subprocess.Popen]) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any(c.poll() is not None for c in children):
                raise CommandError("A process failed to start; see the output above.")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own server
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise CommandError(f"Loupe did not answer at {url} within 60 seconds.")

    def _banner(self, url: str, project, passwords: dict[str, str]) -> None:
        out = self.stdout
        out.write("")
        out.write(self.style.SUCCESS(f"Loupe is running at {url}"))
        out.write(f"Demo project: {url}projects/{project.slug}/")
        out.write("Logins (generated for this install; kept in var/demo-credentials.json):")
        for username, password in passwords.items():
            out.write(f"  {username:<10} {password}")
        out.write(f"API docs: {url}api/docs/   Health: {url}healthz")
        out.write("Press Ctrl-C to stop.")
