"""Bearer tokens: MANAGEMENT_TOKEN guards what changes state, INFERENCE_TOKEN what reads it.

With both unset everything is open, as in v1, and the routes carry no guard at all. Once
either is set, a guarded endpoint needs `Authorization: Bearer <token>`: the management token
opens every guarded endpoint, the inference token only the inference ones. The guards are
FastAPI `HTTPBearer` dependencies, so OpenAPI declares the scheme and Swagger UI's Authorize
button works. Tokens are compared in
constant time, and neither they nor what a client sent ever appear in a message or a log.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
from dataclasses import dataclass

import psutil
from fastapi import Request
from fastapi.security import HTTPBearer

from server.errors import Forbidden, Unauthorized

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tokens:
    management: bytes | None = None
    inference: bytes | None = None

    @classmethod
    def of(cls, management: str | None, inference: str | None) -> Tokens:
        return cls(
            management.encode() if management else None,
            inference.encode() if inference else None,
        )

    @property
    def open(self) -> bool:
        return self.management is None and self.inference is None

    def role(self, presented: str | None) -> str | None:
        """'management', 'inference' or None. Both comparisons always run, in constant time,
        so the answer's timing does not tell which token came close."""
        given = (presented or "").encode()
        is_management = _same(given, self.management)
        is_inference = _same(given, self.inference)
        return "management" if is_management else "inference" if is_inference else None

    def role_of_header(self, authorization: str) -> str | None:
        """The role of an `Authorization` header's bearer token (any other scheme: None)."""
        scheme, _, given = authorization.partition(" ")
        return self.role(given if scheme.lower() == "bearer" else None)


def _same(given: bytes, expected: bytes | None) -> bool:
    return expected is not None and hmac.compare_digest(given, expected)


class BearerGuard(HTTPBearer):
    """FastAPI's HTTPBearer security (so OpenAPI declares the scheme and Swagger UI's
    Authorize button works) that also checks the token, in one dependency: a second level
    of dependency would cost every request more (see docs/performance-history.md, Figures behind
    the code)."""

    def __init__(self, management: bool) -> None:
        super().__init__(
            auto_error=False,
            scheme_name="BearerToken",
            description=(
                "MANAGEMENT_TOKEN (every guarded endpoint) or INFERENCE_TOKEN "
                "(predict and the read-only endpoints)"
            ),
        )
        self._management = management

    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        tokens: Tokens = request.app.state.tokens
        role = tokens.role_of_header(request.headers.get("authorization", ""))
        if role is None:
            raise Unauthorized(
                "this endpoint needs Authorization: Bearer <token> with a valid token",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if self._management and role == "inference":
            raise Forbidden("this endpoint needs the management token; the inference token can't")


# One guard per access level; routes get them only when a token is set (server.http.routing).
GUARDS = {"management": BearerGuard(management=True), "inference": BearerGuard(management=False)}


def warn_if_exposed(tokens: Tokens) -> None:
    """Say where this process listens and whether tokens guard it, and warn if it listens on
    an address other than loopback with no token set. Read from the sockets themselves, so it
    holds however the server was started (make run, a container, uvicorn by hand); called
    once uvicorn is listening."""
    try:
        connections = psutil.Process(os.getpid()).net_connections(kind="inet")
    except psutil.Error:  # not permitted on this platform: say nothing rather than guess
        return
    listening = sorted(
        {(c.laddr.ip, c.laddr.port) for c in connections if c.status == psutil.CONN_LISTEN}
    )
    exposed = [ip for ip, _ in listening if not ipaddress.ip_address(ip).is_loopback]
    addresses = ", ".join(f"{ip}:{port}" for ip, port in listening) or "no socket yet"
    if exposed and tokens.open:
        logger.warning(
            "listening on %s with no MANAGEMENT_TOKEN or INFERENCE_TOKEN set: anyone who can "
            "reach it can train, delete and load models (loading unpickles files); set tokens "
            "in .env",
            addresses,
        )
    else:
        guard = (
            "no token set: writing calls only to ALLOWED_HOSTS"
            if tokens.open
            else "bearer tokens required"
        )
        logger.info("listening on %s; %s", addresses, guard)
