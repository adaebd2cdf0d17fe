"""The agent's small HTTP/1.1 server (lbaas.agent.server) on loopback, without TLS."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
from typing import Any

from lbaas.agent.server import serve_async


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EchoApp:
    """Answers with what it saw; records lifespan events."""

    def __init__(self) -> None:
        self.events: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                self.events.append(message["type"])
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        body = (await receive())["body"]
        if scope["path"] == "/boom":
            raise RuntimeError("boom")
        if scope["path"] == "/slow":
            await asyncio.sleep(0.3)
        data = json.dumps({"method": scope["method"], "path": scope["path"],
                           "query": scope["query_string"].decode(), "body": body.decode()})
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": data.encode()})


async def _exchange(port: int, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)  # until the server closes
    writer.close()
    return data


async def _with_server(app: EchoApp, body: Any, by_signal: bool = False) -> Any:
    """Run ``body(port, stop)`` against a server; stop it with SIGTERM or with the event."""
    port = _free_port()
    stop = None if by_signal else asyncio.Event()
    task = asyncio.create_task(serve_async(app, "127.0.0.1", port, None, max_body=100,
                                           stop=stop))
    for _ in range(100):
        try:
            (await asyncio.open_connection("127.0.0.1", port))[1].close()
            break
        except OSError:
            await asyncio.sleep(0.02)
    try:
        return await body(port, stop)
    finally:
        if stop is None:
            os.kill(os.getpid(), signal.SIGTERM)  # caught by the server's own handler
        else:
            stop.set()
        await asyncio.wait_for(task, 10)


def test_keep_alive_requests_bodies_and_lifespan() -> None:
    app = EchoApp()

    async def body(port: int, _: Any) -> bytes:
        return await _exchange(port, b"PUT /v1/x%20y?a=1 HTTP/1.1\r\nHost: h\r\n"
                               b"Content-Length: 5\r\n\r\nhello"
                               b"GET /two HTTP/1.1\r\nConnection: close\r\n\r\n")

    data = asyncio.run(_with_server(app, body, by_signal=True))
    first, second = data.split(b"HTTP/1.1 200 OK\r\n")[1:]
    assert b"Connection: keep-alive" in first and b"Connection: close" in second
    assert json.loads(first.split(b"\r\n\r\n", 1)[1]) == {
        "method": "PUT", "path": "/v1/x y", "query": "a=1", "body": "hello"}
    assert json.loads(second.split(b"\r\n\r\n", 1)[1])["path"] == "/two"
    assert app.events == ["lifespan.startup", "lifespan.shutdown"]


def test_refusals_and_app_errors() -> None:
    async def body(port: int, _: Any) -> list[bytes]:
        return [await _exchange(port, b"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
                await _exchange(port, b"PUT / HTTP/1.1\r\nContent-Length: 101\r\n\r\n"),
                await _exchange(port, b"NONSENSE\r\n\r\n"),
                await _exchange(port, b"GET /boom HTTP/1.1\r\nConnection: close\r\n\r\n")]

    chunked, big, bad, boom = asyncio.run(_with_server(EchoApp(), body))
    assert chunked.startswith(b"HTTP/1.1 411 ") and b"Connection: close" in chunked
    assert big.startswith(b"HTTP/1.1 413 ")
    assert bad.startswith(b"HTTP/1.1 400 ")
    assert boom.startswith(b"HTTP/1.1 500 ")  # the app's exception, logged, not shown


def test_stop_lets_an_inflight_request_finish() -> None:
    async def body(port: int, stop: asyncio.Event) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /slow HTTP/1.1\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.1)
        stop.set()
        data = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        return data

    data = asyncio.run(_with_server(EchoApp(), body))
    assert data.startswith(b"HTTP/1.1 200 OK\r\n") and b'"/slow"' in data
