"""AsyncModelClient: the asynchronous client, on aiohttp."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import aiohttp

from client.calls import (
    Call,
    EventStream,
    JobRef,
    ProgressCallback,
    job_events,
)
from client.endpoints import Endpoints
from client.sync_client import DEFAULT_URL, auth_headers

KEEPALIVE_SECONDS = 3.0


class AsyncModelClient(Endpoints[Awaitable[Any]]):
    """`async with AsyncModelClient(url) as client: await client.predict("rf1", X)`.

    The same methods as `ModelClient`, each a coroutine; many may run at once over one
    connection pool (`max_connections`). `token` as for `ModelClient`.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        connect_timeout: float = 5.0,
        read_timeout: float = 3600.0,
        max_connections: int = 100,
        token: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = auth_headers(token)
        self._timeout = aiohttp.ClientTimeout(
            total=None, connect=connect_timeout, sock_read=read_timeout
        )
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AsyncModelClient:
        self._session = aiohttp.ClientSession(
            timeout=self._timeout,
            headers=self._headers,
            # Close idle connections before uvicorn does (5 s by default): a request sent on
            # a connection the server is closing fails with "Server disconnected".
            connector=aiohttp.TCPConnector(
                limit=self._max_connections, keepalive_timeout=KEEPALIVE_SECONDS
            ),
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def wait(self, job: JobRef, on_progress: ProgressCallback | None = None) -> Any:
        """Follow the job's events until it ends; `on_progress(job)` at each one. Returns
        the saved model's metadata, or raises the ApiError a waiting /fit would have."""
        call = job_events(job)
        while True:  # a dropped stream is picked up again; an unknown job is a 404
            async with self._started().get(self.base_url + call.path) as response:
                if response.status != 200:
                    call.check(response.status, await response.json(content_type=None))
                stream = EventStream(on_progress)
                async for raw in response.content:
                    if (model := stream.follow(raw.decode())) is not None:
                        return model

    def _started(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("use `async with AsyncModelClient(...) as client:`")
        return self._session

    async def send(self, call: Call) -> Any:
        async with self._started().request(
            call.method, self.base_url + call.path, json=call.body
        ) as response:
            try:
                answer = await response.json(content_type=None)
            except ValueError:
                answer = await response.text()
            return call.check(response.status, answer, response.headers.get("Retry-After"))
