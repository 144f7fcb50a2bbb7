"""ModelClient: the synchronous client, on requests."""

from __future__ import annotations

import os
from typing import Any

import requests

from client.calls import (
    Call,
    EventStream,
    JobRef,
    ProgressCallback,
    job_events,
)
from client.endpoints import Endpoints

DEFAULT_URL = "http://localhost:8000"
# The bearer token, when the server has MANAGEMENT_TOKEN or INFERENCE_TOKEN set.
TOKEN_VARIABLE = "MODEL_SERVER_TOKEN"


def auth_headers(token: str | None) -> dict[str, str]:
    """`Authorization: Bearer ...` for `token`, or for $MODEL_SERVER_TOKEN if none is given."""
    token = token if token is not None else os.environ.get(TOKEN_VARIABLE)
    return {"Authorization": f"Bearer {token}"} if token else {}


class ModelClient(Endpoints[Any]):
    """`ModelClient("http://localhost:8000").fit("rf1", "RandomForestClassifier", X, y)`.

    Every method returns the server's JSON answer, or raises `ApiError` with the status and
    the server's `detail`. `read_timeout` bounds the wait for an answer: a long fit needs a
    generous one (the default is an hour). `token` is sent as a bearer token (default: the
    MODEL_SERVER_TOKEN environment variable, if set).
    """

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        connect_timeout: float = 5.0,
        read_timeout: float = 3600.0,
        token: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.session = requests.Session()
        self.session.headers.update(auth_headers(token))

    def send(self, call: Call) -> Any:
        response = self.session.request(
            call.method, self.base_url + call.path, json=call.body, timeout=self.timeout
        )
        try:
            answer = response.json()
        except ValueError:
            answer = response.text
        return call.check(response.status_code, answer, response.headers.get("Retry-After"))

    def wait(self, job: JobRef, on_progress: ProgressCallback | None = None) -> dict[str, Any]:
        """Follow the job's events until it ends; `on_progress(job)` at each one. Returns
        the saved model's metadata, or raises the ApiError a waiting /fit would have."""
        call = job_events(job)
        while True:  # a dropped stream is picked up again; an unknown job is a 404
            with self.session.get(
                self.base_url + call.path, stream=True, timeout=self.timeout
            ) as response:
                if response.status_code != 200:
                    call.check(response.status_code, response.json())
                stream = EventStream(on_progress)
                for line in response.iter_lines():
                    if (model := stream.follow(line.decode())) is not None:
                        return model

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> ModelClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
