"""RequestGuard: what no route should see, refused before one runs.

- Two `Authorization` headers (400): two readers could take different ones.
- A writing call (POST, PUT, PATCH, DELETE) that a web page could have sent: any page a
  user visits can POST a "simple" request (a form, `text/plain`) to a server on their
  machine with no preflight, and with DNS rebinding even as the same origin. So a writing
  call is refused (403) when its `Origin` is another site's (unless in ALLOWED_ORIGINS), and,
  with no token set, when its `Host` is not one of ALLOWED_HOSTS. A read that returns users'
  data (the export of captured rows) passes the same check: through DNS rebinding a page
  could read it too.
- A body that is neither JSON nor, where a route takes a file, `multipart/form-data` (415).

HEAD is routed as GET: uvicorn itself sends no body for it. Media types are matched
case-insensitively, as RFC 9110 says they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

WRITING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FILE_ROUTES = frozenset({"/fit", "/predict", "/evaluate", "/explain", "/automl"})


def takes_files(path: str) -> bool:
    """The routes whose body may be a file (multipart): the tables, and feedback."""
    return path in FILE_ROUTES or (path.startswith("/models/") and path.endswith("/feedback"))


def returns_users_data(path: str) -> bool:
    """The reads that return what users sent: the captured rows' export."""
    return path.startswith("/models/") and path.endswith("/monitoring/rows")


JSON = "application/json"
MULTIPART = "multipart/form-data"
REMEMBERED = 64  # distinct header values whose verdict is kept


def media_type(value: bytes | str) -> str:
    """`text/CSV; charset=utf-8` -> `text/csv`."""
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    return text.split(";", 1)[0].strip().lower()


def is_json(value: bytes | str) -> bool:
    kind = media_type(value)
    return kind == JSON or (kind.startswith("application/") and kind.endswith("+json"))


def host_name(host: str) -> str:
    """The name in a Host header or an origin's authority, without the port."""
    return (urlsplit(f"//{host}").hostname or "").lower()


class GuardRules:
    """The rules, apart from the middleware: the hot path asks the same instance."""

    def __init__(self, allowed_origins: Iterable[str], allowed_hosts: Iterable[str] | None) -> None:
        """`allowed_hosts`: None, any Host (tokens are set: a page can't send them)."""
        self.allowed_origins = {origin.rstrip("/").lower() for origin in allowed_origins}
        self.allowed_hosts = None if allowed_hosts is None else set(map(str.lower, allowed_hosts))
        # Header values seen -> verdict: a client sends the same few again and again.
        self._json: dict[bytes, bool] = {}
        self._hosts: dict[bytes, bool] = {}

    def is_json(self, content_type: bytes) -> bool:
        verdict = self._json.get(content_type)
        if verdict is None:
            verdict = is_json(content_type)
            if len(self._json) < REMEMBERED:
                self._json[content_type] = verdict
        return verdict

    def host_allowed(self, host: bytes) -> bool:
        """Whether a writing call may be addressed to this Host header."""
        if self.allowed_hosts is None:
            return True
        verdict = self._hosts.get(host)
        if verdict is None:
            verdict = host_name(host.decode("latin-1")) in self.allowed_hosts
            if len(self._hosts) < REMEMBERED:
                self._hosts[host] = verdict
        return verdict

    def refusal(self, scope: Scope) -> tuple[int, str] | None:
        """The status and detail this request is refused with, or None."""
        return _refusal(self, scope)


class RequestGuard:
    def __init__(self, app: ASGIApp, rules: GuardRules) -> None:
        self.app = app
        self.rules = rules

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self.rules.refusal(scope)
        if refusal is not None:
            status, detail = refusal
            await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send)
            return
        if scope["method"] == "HEAD":
            scope = {**scope, "method": "GET"}
        await self.app(scope, receive, send)


def _refusal(rules: GuardRules, scope: Scope) -> tuple[int, str] | None:
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    authorizations = sum(1 for name, _ in headers if name == b"authorization")
    if authorizations > 1:
        return 400, "the request has more than one Authorization header: send one"
    if scope["method"] not in WRITING and not returns_users_data(scope["path"]):
        return None
    values = dict(headers)
    host = values.get(b"host", b"").decode("latin-1")
    origin = values.get(b"origin")
    if origin is not None:
        sent = origin.decode("latin-1").rstrip("/").lower()
        if sent not in rules.allowed_origins and urlsplit(sent).netloc != host.lower():
            return 403, (
                f"a writing call from the web page of another site ({sent}) is refused: "
                "add that origin to ALLOWED_ORIGINS if it is yours"
            )
    if not rules.host_allowed(host.encode("latin-1")):
        return 403, (
            f"a writing call, or a read of captured rows, to the host name "
            f"{host_name(host)!r} is refused while no token is set (a web page could send "
            "it through DNS rebinding): add the name to ALLOWED_HOSTS, or set MANAGEMENT_TOKEN"
        )
    has_body = values.get(b"content-length", b"0") not in (b"", b"0") or (
        b"transfer-encoding" in values
    )
    if not has_body:
        return None
    content_type = values.get(b"content-type", b"")
    if rules.is_json(content_type):
        return None
    files = takes_files(scope["path"])
    if media_type(content_type) == MULTIPART and files:
        return None
    accepted = f"{JSON} or {MULTIPART}" if files else JSON
    return 415, (
        f"the body's Content-Type is {media_type(content_type) or 'missing'!r}; this "
        f"endpoint takes {accepted}"
    )
