"""What every demo script shares: its options, and how it ends."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp

from client.calls import ApiError
from client.sync_client import DEFAULT_URL, TOKEN_VARIABLE

RESULTS = Path("demo_results/sequential.json")


def parser(description: str) -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(description=description)
    options.add_argument("--url", default=DEFAULT_URL, help=f"the server (default {DEFAULT_URL})")
    options.add_argument(
        "--quick", action="store_true", help="small data and few trees: seconds, not minutes"
    )
    options.add_argument(
        "--token",
        default=None,
        help=f"bearer token for a server with MANAGEMENT_TOKEN set (default: ${TOKEN_VARIABLE})",
    )
    return options


def parse(options: argparse.ArgumentParser) -> argparse.Namespace:
    """Parse the options; a --token becomes $MODEL_SERVER_TOKEN for this process, so every
    client the script makes (some in threads of their own) sends it."""
    args = options.parse_args()
    if args.token:
        os.environ[TOKEN_VARIABLE] = args.token
    return args


def run(main: Callable[[], int]) -> None:
    """Exit 0 when everything answered as expected, 1 when the server misbehaved."""
    try:
        code = main()
    except ApiError as error:
        print(
            f"\nFAILED: the server answered {error.status} to {error.call.method} "
            f"{error.call.path}: {error.detail}",
            file=sys.stderr,
        )
        code = 1
    except (OSError, aiohttp.ClientError) as error:  # refused, reset, timed out
        print(f"\nFAILED: could not talk to the server: {error}", file=sys.stderr)
        code = 1
    sys.exit(code)
