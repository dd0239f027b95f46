"""Ending the web process as a deploy ends it: SIGTERM (Heroku; SIGKILL follows 30 s later) or SIGINT.

Both are handled on the event loop (never as KeyboardInterrupt, which would cancel the requests in
progress between their commit and their answer), and the first one starts this sequence:

1. Stop accepting: the connections already waiting in the listen backlog are accepted and served,
   then the listening sockets close, so a new connection is refused (the router tries another
   process). Every request read from now on is answered with `Connection: close`.
2. Close every websocket with 1012 (Service Restart): clients reconnect at once elsewhere and resume.
3. Let every request in progress finish and be answered, within SHUTDOWN_GRACE_SECONDS; then close
   the idle keep-alive connections (and, past the grace, whatever is still open).
4. Stop the timers and the Redis feed; let the domain pool's calls and the embedded pipeline's
   queued jobs finish in what is left of the grace. Jobs still queued then are cancelled and left to
   the database: the outbox sweep re-publishes unpublished events and re-queues unsent emails in the
   next process (workers/outbox.py). Close the database pool; the process exits 0.

A second signal while this runs changes nothing (honcho stopping `make run` sends SIGINT and then
SIGTERM); SIGKILL remains the way to end the process at once.
"""

import asyncio
import logging
import select
import signal

import tornado.httpserver
import tornado.iostream
from tornado import httputil

from handlers.web import executor
from models import database

log = logging.getLogger("serviceman")
SIGNALS = (signal.SIGTERM, signal.SIGINT)
SETTLE_TURNS = 10  # event loop turns (no waiting) for a request already read off its socket to start


def wait_for_signal():
    """Handle SIGTERM and SIGINT on the running loop; returns a future of the first one's name."""
    loop = asyncio.get_running_loop()
    received = loop.create_future()

    def on_signal(signum):
        name = signal.Signals(signum).name
        if received.done():
            log.info("%s received while already shutting down; the shutdown goes on", name)
        else:
            received.set_result(name)

    for signum in SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)
    return received


def _readable(stream):
    """Whether bytes wait unread on a connection's socket (a request on its way in)."""
    sock = stream.socket
    if sock is None:
        return False
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


class DrainingHTTPServer(tornado.httpserver.HTTPServer):
    """An HTTPServer that knows which of its connections are serving a request, so that it can stop
    accepting and wait for those alone (Tornado's own `close_all_connections` cuts them off)."""

    def initialize(self, *args, **kwargs):
        super().initialize(*args, **kwargs)
        self.listening = []  # the listening sockets
        self._busy = set()  # connections with a request read and not yet answered
        self._idle = set()  # connections waiting for their next request
        self._changed = asyncio.Event()

    def add_sockets(self, sockets):
        self.listening.extend(sockets)
        super().add_sockets(sockets)

    def start_request(self, server_conn, request_conn):
        # Called as a connection starts waiting for its next request: the one before is answered.
        self._busy.discard(server_conn)
        self._idle.add(server_conn)
        self._changed.set()
        return _RequestWatch(super().start_request(server_conn, request_conn), self, server_conn)

    def _request_read(self, server_conn):
        self._idle.discard(server_conn)
        self._busy.add(server_conn)

    def on_close(self, server_conn):
        # Also when a websocket upgrade detaches its connection: the hub has that socket from then on.
        self._busy.discard(server_conn)
        self._idle.discard(server_conn)
        self._changed.set()
        super().on_close(server_conn)

    @property
    def requests_in_progress(self):
        return len(self._busy)

    def stop_accepting(self):
        """Serve what is already in the listen backlog, then close the listening sockets. Requests
        read from now on close their connection once answered."""
        self.conn_params.no_keep_alive = True
        for sock in self.listening:
            self._accept_backlog(sock)
        self.stop()

    def _accept_backlog(self, sock):
        while True:
            try:
                connection, address = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:  # the client gave up while queued
                continue
            stream = tornado.iostream.IOStream(
                connection, max_buffer_size=self.max_buffer_size, read_chunk_size=self.read_chunk_size
            )
            self.handle_stream(stream, address)

    async def drain(self, deadline):
        """Wait until no request is in progress or arriving, or until `deadline` (loop time); then
        close every connection. Returns how many requests were still in progress (cut off)."""
        loop = asyncio.get_running_loop()
        while loop.time() < deadline:
            if not self._active():
                # Bytes Tornado has already taken off a socket reach their handler (and so count as
                # in progress) a few loop turns later, through futures and no I/O: let them.
                for _ in range(SETTLE_TURNS):
                    await asyncio.sleep(0)
                if not self._active():
                    break
                continue
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), deadline - loop.time())
            except TimeoutError:
                break
        cut_off = len(self._busy)
        await self.close_all_connections()
        return cut_off

    def _active(self):
        """A request in progress, or bytes waiting on an idle connection's socket (one arriving)."""
        return bool(self._busy) or any(_readable(conn.stream) for conn in self._idle)


class _RequestWatch(httputil.HTTPMessageDelegate):
    """Passes one request through, telling the server once its headers are read (it is in progress)."""

    def __init__(self, delegate, server, server_conn):
        self.delegate, self.server, self.server_conn = delegate, server, server_conn

    def headers_received(self, start_line, headers):
        self.server._request_read(self.server_conn)
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk):
        return self.delegate.data_received(chunk)

    def finish(self):
        return self.delegate.finish()

    def on_connection_close(self):
        return self.delegate.on_connection_close()


async def shut_down(server, app, timers, grace, reason):
    """Steps 1-4 of the module's docstring; returns when the process may exit."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    hub = app.settings["hub"]
    log.info(
        "%s: shutting down within %.0f s (%d request(s) in progress, %d socket(s) open)",
        reason,
        grace,
        server.requests_in_progress,
        len(hub.open_sockets),
    )
    server.stop_accepting()
    sockets_closing = asyncio.ensure_future(hub.close_sockets(deadline - loop.time()))
    cut_off = await server.drain(deadline)
    sockets_left = await sockets_closing
    for timer in timers:
        timer.stop()
    await hub.close()
    await _in_time(loop, deadline, executor.shutdown)  # calls of stopped timers, background work
    jobs_done = await _finish_embedded_jobs(loop, deadline, app.settings["pipeline"].transport)
    if hasattr(database.obj, "close_all"):
        database.close_all()
    log.info(
        "shut down: %d request(s) cut off by the grace, %d socket(s) not closed cleanly, %s",
        cut_off,
        sockets_left,
        "no pipeline job left" if jobs_done else "queued pipeline jobs cancelled and left to the outbox sweep",
    )


async def _in_time(loop, deadline, fn):
    """Run blocking `fn` off the loop; True if it returned before `deadline`."""
    try:
        await asyncio.wait_for(loop.run_in_executor(None, fn), max(0.0, deadline - loop.time()))
        return True
    except TimeoutError:
        return False


async def _finish_embedded_jobs(loop, deadline, transport):
    """Embedded mode: let the pipeline pool's queued jobs finish within the grace, then cancel the
    rest (the database sweep re-drives them); returns whether every job finished."""
    pool = getattr(transport, "pool", None)
    if pool is None:
        return True
    if await _in_time(loop, deadline, transport.shutdown):
        return True
    pool.shutdown(wait=False, cancel_futures=True)
    return False
