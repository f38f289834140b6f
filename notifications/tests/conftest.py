"""A webhook receiver the tests start (a real HTTP server on a free loopback port, in a
thread), and the loopback allowance it needs (WEBHOOK_ALLOW_PRIVATE; the SSRF tests
switch it off)."""

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@pytest.fixture(autouse=True)
def _allow_private_webhooks(settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True


class Receiver:
    """Answers each POST with the next of `answers` (then 200) and keeps what it got."""

    def __init__(self):
        self.answers: list[int] = []
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hooks/etrms?desk=1"

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    status = receiver.answers.pop(0) if receiver.answers else 200
                    receiver.requests.append(
                        {"path": self.path, "headers": dict(self.headers), "body": body, "answered": status}
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        return Handler

    def received(self) -> list[dict]:
        with self._lock:
            return list(self.requests)

    @staticmethod
    def signature_valid(request: dict, secret: str) -> bool:
        timestamp = request["headers"]["X-ETRMS-Timestamp"]
        expected = hmac.new(secret.encode(), timestamp.encode() + b"." + request["body"], hashlib.sha256).hexdigest()
        return hmac.compare_digest(request["headers"]["X-ETRMS-Signature"], f"sha256={expected}")

    @staticmethod
    def payload(request: dict) -> dict:
        return json.loads(request["body"])


@pytest.fixture
def webhook_receiver():
    receiver = Receiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture
def create_endpoint():
    """POST an endpoint through the API as `client`; returns the 201 body."""

    def create(client, **body):
        body.setdefault("name", "desk-hook")
        body.setdefault("kind", "webhook")
        response = client.post("/api/v1/notifications/endpoints", body, format="json")
        assert response.status_code == 201, response.json()
        return response.json()

    return create
