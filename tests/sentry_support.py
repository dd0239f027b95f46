"""A Sentry ingest stand-in on loopback: accepts `POST /api/<project>/envelope/` as sentry.io does and
keeps every body (un-gzipped), so a test can read the events a real sentry_sdk sent and search
their bytes for anything that must never leave the process."""

import gzip
import json
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class SentryIngest:
    """`dsn(key)` to give a process; `bodies` (raw, decompressed), `events()` (parsed), `wait_for_events`."""

    def __init__(self):
        self.bodies = []
        self.auth_headers = []
        self.arrived = threading.Condition()
        ingest = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                elif encoding:
                    raise AssertionError(f"the stand-in cannot decode {encoding!r} bodies")
                accepted = self.path.startswith("/api/") and self.path.endswith("/envelope/")
                self.send_response(200 if accepted else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")
                if accepted:
                    with ingest.arrived:
                        ingest.bodies.append(body)
                        ingest.auth_headers.append(self.headers.get("X-Sentry-Auth", ""))
                        ingest.arrived.notify_all()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def dsn(self, key, project=42):
        return f"http://{key}@127.0.0.1:{self.port}/{project}"

    def events(self):
        """Every `event` item of every envelope received, parsed."""
        found = []
        for body in list(self.bodies):
            lines = iter(body.split(b"\n")[1:])  # the envelope's own header first
            for header in lines:
                if not header.strip():
                    continue
                item = json.loads(header)
                payload = next(lines, b"")
                if item.get("type") == "event":
                    found.append(json.loads(payload))
        return found

    def wait_for_events(self, predicate, timeout=15):
        """Block until `predicate(events)` holds; returns the events (fails on timeout)."""
        with self.arrived:
            if not self.arrived.wait_for(lambda: predicate(self.events()), timeout):
                raise AssertionError(f"Sentry stand-in: expected events did not arrive; got {self.summary()}")
        return self.events()

    def summary(self):
        return [
            (event.get("transaction"), [value.get("type") for value in event.get("exception", {}).get("values", [])])
            for event in self.events()
        ]

    def raw(self):
        return b"\n".join(self.bodies)

    def raw_items(self):
        """The bodies without their envelope headers (which name the DSN's public key by design)."""
        return b"\n".join(body.split(b"\n", 1)[-1] for body in self.bodies)


class JobFailure(LookupError):
    """What `failing_job` raises: a failure kind of its own, easy to find among events."""


def failing_job():
    """An RQ job (importable by a real worker started from the project root) that always fails."""
    raise JobFailure("the test job failed, as it always does")


def dying_job():
    """An RQ job whose process dies mid-job (SIGKILL: what the OOM killer does), raising nothing."""
    import os
    import signal

    os.kill(os.getpid(), signal.SIGKILL)
