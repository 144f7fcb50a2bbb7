"""The examples of the docs, as a test runs them: `console` blocks of shell commands (curl)
with the answers they print, and `pycon` blocks of Python in doctest form.

In a `console` block a line starting with `$ ` is a command; it goes on over the next lines
until bash takes it as whole (a JSON body in quotes may span lines, a loop ends at `done`). The lines
after it, up to the next command, are what it prints. `...` stands for what varies:
- as a JSON value (`"train_seconds": ...`), any value;
- as a JSON object's member (`{"name": "rf1", ...}`), any other members;
- as the last item of a JSON list (`[1, 2, ...]`), any further items;
- inside a JSON string (`"the first on line 3 ..."`), any characters;
- in text that is not JSON, any characters, across lines.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

# A page may set its example server's environment, which its shell sees too:
# <!-- examples: MANAGEMENT_TOKEN=m-secret INFERENCE_TOKEN=i-secret -->
SETTINGS = re.compile(r"<!-- examples: (.*?) -->")
ANY = "\x00any"
MORE = "\x00more"
FENCE = re.compile(r"^```(\w+)\s*\n(.*?)^```\s*$", re.M | re.S)


@dataclass(frozen=True)
class Command:
    shell: str
    expected: str  # what it prints, as written ("" when nothing is shown)
    line: int  # where the command stands in its file


def blocks(text: str, language: str) -> list[tuple[int, str]]:
    """(line of the block's first line, body) of every fenced block in `language`."""
    return [
        (text[: match.start(2)].count("\n") + 1, match.group(2))
        for match in FENCE.finditer(text)
        if match.group(1) == language
    ]


def page_settings(text: str) -> dict[str, str]:
    found = SETTINGS.search(text)
    if found is None:
        return {}
    return dict(pair.split("=", 1) for pair in found.group(1).split())


def _complete(shell: str) -> bool:
    """Whether bash takes `shell` as whole (closed quotes, `done` after `do`, ...)."""
    if shell.endswith("\\"):
        return False
    checked = subprocess.run(["bash", "-n", "-c", shell], capture_output=True, text=True)
    return not re.search(r"unexpected (end of file|EOF)", checked.stderr)


def commands(text: str) -> list[Command]:
    found: list[Command] = []
    for first, body in blocks(text, "console"):
        lines = body.splitlines()
        i = 0
        while i < len(lines):
            if not lines[i].startswith("$ "):
                i += 1
                continue
            start, shell = i, lines[i][2:]
            while not _complete(shell) and i + 1 < len(lines):
                i += 1
                shell += "\n" + lines[i]
            i += 1
            output = []
            while i < len(lines) and not lines[i].startswith("$ "):
                output.append(lines[i])
                i += 1
            found.append(Command(shell, "\n".join(output).strip(), first + start))
    return found


def _pattern_json(expected: str) -> Any:
    """The expected JSON with its `...` made into markers, or None if it is not JSON."""
    marked = re.sub(r"([{,]\s*)\.\.\.(\s*[},])", rf'\1"{MORE}": 0\2', expected)
    marked = re.sub(r"(:\s*)\.\.\.", rf'\1"{ANY}"', marked)
    marked = re.sub(r"([\[,]\s*)\.\.\.(\s*\])", rf'\1"{MORE}"\2', marked)
    try:
        return json.loads(marked, strict=False)  # the markers hold a control character
    except json.JSONDecodeError:
        return None


def _matches(expected: Any, actual: Any, where: str) -> str | None:
    """None if `actual` fits `expected`, else where and how it differs."""
    if expected == ANY:
        return None
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{where}: expected an object, got {actual!r}"
        keys = set(expected) - {MORE}
        if MORE not in expected and keys != set(actual):
            return f"{where}: keys {sorted(actual)} instead of {sorted(keys)}"
        missing = keys - set(actual)
        if missing:
            return f"{where}: no {sorted(missing)} in {sorted(actual)}"
        for key in sorted(keys):
            difference = _matches(expected[key], actual[key], f"{where}.{key}")
            if difference:
                return difference
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return f"{where}: expected a list, got {actual!r}"
        open_ended = bool(expected) and expected[-1] == MORE
        items = expected[:-1] if open_ended else expected
        if len(actual) < len(items) or (not open_ended and len(actual) != len(items)):
            return f"{where}: {len(actual)} items instead of {len(items)}"
        for index, item in enumerate(items):
            difference = _matches(item, actual[index], f"{where}[{index}]")
            if difference:
                return difference
        return None
    if isinstance(expected, str) and "..." in expected and isinstance(actual, str):
        pattern = ".*?".join(map(re.escape, expected.split("...")))
        return None if re.fullmatch(pattern, actual, re.S) else f"{where}: {actual!r}"
    if isinstance(expected, float) and isinstance(actual, int | float):
        return None if math.isclose(expected, actual, rel_tol=1e-6) else f"{where}: {actual}"
    return None if expected == actual else f"{where}: {actual!r} instead of {expected!r}"


def difference(expected: str, printed: str) -> str | None:
    """None if what a command printed fits what the doc shows, else how it differs."""
    if not expected:
        return None
    pattern = _pattern_json(expected)
    if pattern is not None:
        try:
            actual = json.loads(printed)
        except json.JSONDecodeError:
            return f"printed no JSON: {printed[:300]!r}"
        return _matches(pattern, actual, "answer")

    def spaced(text: str) -> str:
        return re.sub(r"[ \t]+", " ", text.strip())

    parts = re.split(r"\s*\.\.\.\s*", spaced(expected))
    if re.fullmatch(r"\s*.*?\s*".join(map(re.escape, parts)), spaced(printed), re.S):
        return None
    return f"printed {printed[:500]!r}"


def pages(root: Path) -> list[Path]:
    """Every page, in the order a new user reads them: the README, then the site's
    navigation (mkdocs.yml), then any page it leaves out."""
    navigation = re.findall(r":\s*([\w-]+\.md)\s*$", (root / "mkdocs.yml").read_text(), re.M)
    ordered = [root / "docs" / name for name in navigation]
    rest = sorted(set((root / "docs").glob("*.md")) - set(ordered))
    return [root / "README.md", *ordered, *rest]


class Shell:
    """One bash session for a page's commands, as a reader types them in one terminal:
    variables set by one command are there for the next."""

    def __init__(self, cwd: Path) -> None:
        self._mark = f"--- {uuid.uuid4().hex} ---"
        # The reader's terminal has the project's environment active (`python3` is its own).
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        self._bash = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=cwd,
            env={**os.environ, "PATH": path},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def run(self, command: str) -> tuple[int, str]:
        """(exit status, what it printed); the session is closed by `close`."""
        stdin, stdout = self._bash.stdin, self._bash.stdout
        assert stdin is not None and stdout is not None
        stdin.write(f"{command}\nstatus=$?; echo; echo '{self._mark}' $status\n")
        stdin.flush()
        return _read_until(stdout, self._mark)

    def close(self) -> None:
        self._bash.kill()
        self._bash.wait(10)
        for pipe in (self._bash.stdin, self._bash.stdout):
            if pipe is not None:
                pipe.close()


def _read_until(stdout: IO[str], mark: str) -> tuple[int, str]:
    printed: list[str] = []
    for line in stdout:
        if line.startswith(mark):
            return int(line[len(mark) :]), "".join(printed)
        printed.append(line)
    return -1, "".join(printed)  # bash ended
