"""The version numbers given to removed names, so that none is given twice.

A name's own folder keeps the numbers it used (its versions, its pointers' history and
highest deletion); `/remove` takes the folder away, so the highest number a removed name
had is kept beside the names, in `MODELS_PATH/_numbers.json` (a name no model can have):

    {"churn": 3, "iris": 1}

A name trained again after its removal starts above it: files, captured rows and caches
keyed by (name, version) never meet an older model under the same key.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from server.store.atomic import write_bytes_atomically
from server.store.layout import read_regular

FILE_NAME = "_numbers.json"
logger = logging.getLogger("server")


def _read(root: Path) -> dict[str, int]:
    try:
        data = json.loads(read_regular(root / FILE_NAME))
        return {str(name): int(number) for name, number in data.items()}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, TypeError, AttributeError) as error:
        logger.error("%s can't be read (%s): removed names may get numbers again", FILE_NAME, error)
        return {}


def given(root: Path, name: str) -> int:
    """The highest number a removed `name` ever had; 0 if none."""
    return _read(root).get(name, 0)


def remember(root: Path, name: str, highest: int) -> None:
    """Before a name's folder goes: its numbers up to `highest` are never given again."""
    numbers = _read(root)
    if highest > numbers.get(name, 0):
        numbers[name] = highest
        content = json.dumps(dict(sorted(numbers.items())), indent=1).encode()
        write_bytes_atomically(root / FILE_NAME, content)
