"""The HTTP server's edge as `playbook serve` runs it: uvicorn with limits on what a client may
send before the app sees a request (header size, header time, open connections) and forwarded
headers trusted only from configured proxies."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.config import Settings

PROTOCOL = "app.web.server:GuardedHttpProtocol"


class _HeadTooLarge(Exception):
    pass


class GuardedHttpProtocol(HttpToolsProtocol):
    """httptools, which sets no limit of its own, with two: a request's head (request line and
    headers) must arrive within `timeout_keep_alive` seconds of its first byte (or of the
    connection opening), and must fit in `h11_max_incomplete_event_size` bytes. A slow client
    is disconnected; an oversized one gets 431. (The two uvicorn settings are reused so every
    worker process gets them through uvicorn's own configuration.)"""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_bytes = 0
        self._head_too_large = False
        self._head_timer: asyncio.TimerHandle | None = None
        self._start_head_timer()

    def _start_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.config.timeout_keep_alive,
                                                    self._head_too_slow)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def _over_limit(self, size: int) -> bool:
        limit = self.config.h11_max_incomplete_event_size
        self._head_too_large = limit is not None and size > limit
        return self._head_too_large

    def _refuse_head(self) -> None:
        self._stop_head_timer()
        if not self.transport.is_closing():
            self.transport.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                                 b"content-type: text/plain; charset=utf-8\r\n"
                                 b"content-length: 32\r\nconnection: close\r\n\r\n"
                                 b"Request Header Fields Too Large\n")
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._head_timer is not None and not self._head_too_large:
            # A head still incomplete: httptools would buffer it without end.
            self._head_bytes += len(data)
            if self._over_limit(self._head_bytes):
                self._refuse_head()

    def send_400_response(self, msg: str) -> None:
        if self._head_too_large:  # raised from on_headers_complete, inside the parser
            self._refuse_head()
        else:
            super().send_400_response(msg)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._start_head_timer()  # a keep-alive connection's next request

    def on_headers_complete(self) -> None:
        self._stop_head_timer()
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if self._over_limit(size):  # a head that arrived whole, in one read
            raise _HeadTooLarge
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn.run's keyword arguments for the edge limits in `settings`."""
    proxies = settings.forwarded_allow_ips.strip()
    return {
        "http": PROTOCOL,
        "ws": "none",  # no route speaks WebSocket; "auto" would import a library (~35 ms of start)
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        "timeout_keep_alive": settings.header_timeout_seconds,
        "limit_concurrency": settings.max_connections,
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": proxies or None,
        "server_header": False,
        "log_config": None,  # app.web.logs formats every logger, uvicorn's too
        "log_level": "info",
        "access_log": False,
    }
