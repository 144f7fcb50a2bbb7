"""Every curl and Python example of the README and the docs site runs against a real server,
and prints what the page shows (tests/doc_examples.py says how `...` stands for what
varies). A page whose example drifts from the server fails here."""

from __future__ import annotations

import doctest
import io
from pathlib import Path

import pytest

from tests.doc_examples import Shell, blocks, commands, difference, page_settings, pages
from tests.servers import PROJECT_ROOT, uvicorn_server

PAGES = [
    page
    for page in pages(PROJECT_ROOT)
    if commands(page.read_text()) or blocks(page.read_text(), "pycon")
]
# Pages written for the default settings run in reading order on one server, as a new user
# meets them: a name the README trained, or its load cap, shows up on the next page.
DEFAULT_PAGES = [page for page in PAGES if not page_settings(page.read_text())]
OWN_SETTINGS = [page for page in PAGES if page_settings(page.read_text())]


def run_examples(page: Path, url: str, shell: Shell) -> None:
    """The page's console commands in `shell`, then its Python examples (in one namespace,
    as in one session), each checked against what the page shows."""
    text = page.read_text()
    for variable, value in page_settings(text).items():
        shell.run(f"export {variable}='{value}'")
    for command in commands(text):
        status, printed = shell.run(
            command.shell.replace("localhost:8000", url.removeprefix("http://"))
        )
        where = f"{page.name}:{command.line}: {command.shell}"
        assert status == 0, f"{where}\nexit {status}: {printed}"
        problem = difference(command.expected, printed)
        assert problem is None, f"{where}\n{problem}"
    names: dict = {}
    for line, body in blocks(text, "pycon"):
        source = body.replace("http://localhost:8000", url)
        test = doctest.DocTestParser().get_doctest(source, names, page.name, str(page), line)
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        report = io.StringIO()
        runner.run(test, out=report.write, clear_globs=False)
        assert runner.failures == 0, f"{page.name}:{line}\n{report.getvalue()}"


def test_the_pages_for_the_default_settings_run_in_reading_order_on_one_server(
    tmp_path: Path,
) -> None:
    """The README, Getting started, then the rest, against one server on the default `.env`
    (TRAINING_CORES=4, MAX_INFERENCE_MODELS=2), in one terminal."""
    assert [page.name for page in DEFAULT_PAGES[:2]] == ["README.md", "getting-started.md"]
    with uvicorn_server(tmp_path / "models", training_cores=4) as (url, _):
        shell = Shell(tmp_path)
        try:
            for page in DEFAULT_PAGES:
                run_examples(page, url, shell)
        finally:
            shell.close()


@pytest.mark.parametrize("page", OWN_SETTINGS, ids=lambda page: page.name)
def test_the_examples_of_a_page_with_its_own_settings_answer_as_it_shows(
    page: Path, tmp_path: Path
) -> None:
    env = page_settings(page.read_text())
    with uvicorn_server(tmp_path / "models", training_cores=4, env=env) as (url, _):
        shell = Shell(tmp_path)
        try:
            run_examples(page, url, shell)
        finally:
            shell.close()


def test_every_curl_and_client_example_is_one_that_runs() -> None:
    """An example in a plain `bash` or `python` block would not be run: there are none."""
    for page in pages(PROJECT_ROOT):
        text = page.read_text()
        for language in ("bash", "sh", "shell", "text"):
            for line, body in blocks(text, language):
                assert "curl " not in body, f"{page.name}:{line}: make it a console block"
        for line, body in blocks(text, "python"):
            assert "ModelClient(" not in body, f"{page.name}:{line}: make it a pycon block"
    assert len(PAGES) >= 3


def test_a_shown_answer_that_differs_is_found() -> None:
    assert difference('{"name": "rf1", ...}', '{"name": "rf1", "status": "loaded"}') is None
    assert difference('{"name": "rf1", ...}', '{"name": "rf2", "status": "loaded"}')
    assert difference('{"name": "rf1"}', '{"name": "rf1", "status": "loaded"}')
    assert difference('{"seconds": ..., "n": 3}', '{"seconds": 0.25, "n": 3}') is None
    assert difference('{"seconds": ..., "n": 3}', '{"seconds": 0.25, "n": 4}')
    assert difference('{"p": [[0.9, 0.1]]}', '{"p": [[0.8, 0.2]]}')
    assert difference('{"ids": ["a", ...]}', '{"ids": ["a", "b", "c"]}') is None
    assert difference('{"ids": ["a", ...]}', '{"ids": ["b"]}')
    assert (
        difference("prediction,probability_no\n...", "prediction,probability_no\nyes,0.1") is None
    )
    assert difference("prediction,probability_no\n...", "label\nyes")
