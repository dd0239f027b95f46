"""A raw HTTP/1.1 connection for the tests: several requests on one keep-alive socket, exactly as
sent (Content-Length or chunked bodies), and each response read back with its headers, so a test can
see whether the server kept the connection after answering."""

import asyncio
import json

from tornado.iostream import StreamClosedError
from tornado.tcpclient import TCPClient

WAIT = 3  # seconds: the longest one response may take (under the test timeout)


class RawResponse:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    @property
    def closes(self):
        """The server said it closes the connection after this response."""
        return self.headers.get("connection", "").lower() == "close"

    @property
    def error_code(self):
        return json.loads(self.body).get("error", {}).get("code") if self.body else None

    def __repr__(self):
        return f"<RawResponse {self.status} {self.body[:120]!r}>"


class RawConnection:
    """One TCP connection to the test server; `await conn.request("POST", path, body=...)`."""

    def __init__(self, stream):
        self.stream = stream

    @classmethod
    async def open(cls, port):
        return cls(await TCPClient().connect("127.0.0.1", port))

    def close(self):
        self.stream.close()

    async def request(self, method, path, body=None, headers=None, chunked=False):
        """Send one request and read its response; None when the server closed the connection."""
        body = json.dumps(body).encode() if isinstance(body, (dict, list)) else (body or b"")
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if chunked:
            lines.append("Transfer-Encoding: chunked")
            # Two chunks, then the last-chunk: a body whose size the headers never declared.
            half = len(body) // 2
            payload = (
                b"".join(f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in (body[:half], body[half:]) if part)
                + b"0\r\n\r\n"
            )
        else:
            if body or method in ("POST", "PATCH", "PUT"):
                lines.append(f"Content-Length: {len(body)}")
            payload = body
        try:
            await self.stream.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
            return await asyncio.wait_for(self._read_response(), WAIT)
        except StreamClosedError:
            return None

    async def _read_response(self):
        head = (await self.stream.read_until(b"\r\n\r\n")).decode("latin-1")
        status_line, *header_lines = head.strip("\r\n").split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while size := int((await self.stream.read_until(b"\r\n")).strip(), 16):
                body += (await self.stream.read_bytes(size + 2))[:-2]
            await self.stream.read_until(b"\r\n")
        else:
            length = int(headers.get("content-length", "0"))
            body = await self.stream.read_bytes(length) if length else b""
        return RawResponse(int(status_line.split()[1]), headers, body)


class RawConnections:
    def __init__(self, port):
        self.port, self.opened = port, []

    async def open(self):
        conn = await RawConnection.open(self.port)
        self.opened.append(conn)
        return conn

    def close_all(self):
        for conn in self.opened:
            conn.close()
