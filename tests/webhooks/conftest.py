"""Fixtures of the webhook tests: real HTTP receivers on loopback addresses, in threads, that
record what reaches them and answer as told; and webhooks of the team's project."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apps.webhooks import services
from apps.webhooks.models import Webhook
from apps.webhooks.signing import secret_new


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes


@dataclass
class Receiver:
    """Answers each POST with the next of `answers` (a status, or (status, headers)); 200 once
    they run out."""

    host: str
    answers: list = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the name http.server calls
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
                answer = receiver.answers.pop(0) if receiver.answers else 200
                status, headers = answer if isinstance(answer, tuple) else (answer, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                reply = b'{"ok": true}' if status < 300 else b"not now"
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        server_class = ThreadingHTTPServer
        if ":" in self.host:

            class server_class(ThreadingHTTPServer):  # noqa: N801
                address_family = socket.AF_INET6

        self.server = server_class((self.host, 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    """receiver(host="127.0.0.1", answers=[500, 200]) → a started Receiver, stopped after."""
    started: list[Receiver] = []

    def start(host: str = "127.0.0.1", answers=()) -> Receiver:
        started.append(Receiver(host=host, answers=list(answers)).start())
        return started[-1]

    yield start
    for r in started:
        r.stop()


@pytest.fixture
def enqueued(monkeypatch):
    """The attempts the services queue (delivery id, countdown), instead of the broker."""
    calls: list[tuple[int, float]] = []
    monkeypatch.setattr(
        services,
        "_enqueue",
        lambda delivery_id, countdown=0: calls.append((delivery_id, countdown)),
    )
    return calls


def stored_webhook(team, url: str, events=("version.committed",), **extra) -> Webhook:
    """A webhook as it may sit in the database, whatever its URL: made while the operator's
    allow-list let it through, say, and the list changed since."""
    return Webhook.objects.create(
        project=team.project,
        url=url,
        events=list(events),
        secret=secret_new(),
        created_by=team.user("owner"),
        **extra,
    )
