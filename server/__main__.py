"""`python -m server` (or `model-server`, installed): the service's command.

python -m server serve [--host H] [--port P] [--grace S]   serve (settings from .env)
python -m server trust list | sign ... | rotate            what `python -m server.trust` does
python -m server version
"""

from __future__ import annotations

import argparse
import sys

from server import __version__

APP = "server.main:app"
# How long a kept-alive connection may stay idle between requests.
KEEP_ALIVE_SECONDS = 75


def serve(host: str, port: int, grace: int) -> None:
    """uvicorn, one worker, with the header and body timeouts of server.http.protocol."""
    import uvicorn

    from server.config import load_settings
    from server.http.protocol import TimedHttpToolsProtocol

    settings = load_settings()
    TimedHttpToolsProtocol.configure(settings.header_timeout_seconds, settings.body_timeout_seconds)
    uvicorn.run(
        APP,
        host=host,
        port=port,
        workers=1,
        http=TimedHttpToolsProtocol,
        timeout_graceful_shutdown=grace,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        access_log=False,  # the server writes its own (ACCESS_LOG)
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["trust"]:  # its own arguments and --help, as `python -m server.trust`
        from server.trust import command

        return command.main(argv[1:])
    prog = "model-server" if sys.argv[0].endswith("model-server") else "python -m server"
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serving = commands.add_parser("serve", help="serve the API (settings from .env)")
    serving.add_argument("--host", default="127.0.0.1")
    serving.add_argument("--port", type=int, default=8000)
    serving.add_argument(
        "--grace", type=int, default=10, help="seconds requests get to finish after SIGTERM"
    )
    commands.add_parser("trust", help="which model files the server trusts (list, sign, rotate)")
    commands.add_parser("version", help="the service's version")
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.host, args.port, args.grace)
        return 0
    print(__version__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
