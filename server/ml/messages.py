"""A library's error message as a user should read it: its first statement, no native stack
trace, no path of this machine."""

from __future__ import annotations

import re

# XGBoost and LightGBM prefix C++ errors with "[14:58:39] /src/dir/file.cc:99: ".
NATIVE_PREFIX = re.compile(r"\[\d{2}:\d{2}:\d{2}\]\s*(?:\S+:\d+:\s*)?")
# An absolute path (POSIX, or Windows), not one inside a word or a URL (`https://...`, as a
# warning gives its docs): a library's own relative
# source path (catboost/private/libs/...) is part of its message, not this machine's.
PATH = re.compile(r"(?<![\w./\\:-])(?:[A-Za-z]:\\|/)[^\s:'\"()\[\],]*[/\\]([^\s:'\"()\[\],/\\]+)")
STACK_MARKERS = ("Stack trace:", "Traceback (most recent call last)")


def library_message(text: str) -> str:
    """`text` without a stack trace or native prefix, and with every path cut to its file's
    name; one line."""
    for marker in STACK_MARKERS:
        text = text.split(marker, 1)[0]
    text = NATIVE_PREFIX.sub("", text)
    text = PATH.sub(lambda match: match.group(1), text)
    return " ".join(text.split())
