"""The life cycle of a model, then every error the server answers, provoked on purpose.

    python -m client.lifecycle [--url URL] [--quick]

Each step shows the status it expects and the one it got, with the server's message.
Exits 1 if any status differs from the one the contract promises.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from client import cli
from client.calls import ApiError
from client.plans import make_data
from client.report import table
from client.sync_client import ModelClient

PREFIX = "life"
NAMES = [f"{PREFIX}-1", f"{PREFIX}-2", f"{PREFIX}-3"]
MODEL_TYPES = ["LogisticRegression", "RandomForestClassifier", "XGBClassifier"]
# Keeps a slot busy for a few seconds on the quick data.
BUSY_TYPE, BUSY_HYPERPARAMETERS = "RandomForestClassifier", {"n_estimators": 1500}
BUSY_WAIT_SECONDS = 30.0


class Steps:
    """Runs steps and records, for each, the expected status, the one received and why."""

    def __init__(self) -> None:
        self.rows: list[list[Any]] = []

    def expect(self, step: str, status: int, action: Callable[[], Any]) -> Any:
        try:
            answer, got = action(), 200
            message = json.dumps(answer, separators=(",", ":"))
        except ApiError as error:
            answer, got, message = None, error.status, str(error.detail)
        # A 201 or 202 is a fit's success, reported by the client as an answer, not an error.
        ok = got == status or (status in (201, 202) and got == 200)
        self.rows.append(
            [step, status, status if ok else got, "ok" if ok else "WRONG", message[:90]]
        )
        verdict = "ok   " if ok else "WRONG"
        print(f"  {verdict} {step}: expected {status}, got {status if ok else got} {message[:90]}")
        return answer

    @property
    def failed(self) -> int:
        return sum(row[3] != "ok" for row in self.rows)


def life_cycle(client: ModelClient, steps: Steps, X: Any, y: Any) -> None:
    print("Life cycle:")
    for name, model_type in zip(NAMES, MODEL_TYPES, strict=True):
        steps.expect(f"fit {name} ({model_type})", 201, partial(client.fit, name, model_type, X, y))
    first = NAMES[0]
    steps.expect(f"load {first}", 200, lambda: client.load(first))
    steps.expect(f"predict with {first}", 200, lambda: client.predict(first, X[:3]))
    answer = steps.expect(
        "predict with probabilities", 200, lambda: client.predict(first, X[:1], probabilities=True)
    )
    if answer:
        print(f"      classes {answer['classes']}, probabilities {answer['probabilities']}")
    steps.expect(f"unload {first}", 200, lambda: client.unload(first))
    steps.expect(f"remove {first}", 200, lambda: client.remove(first))


def errors(client: ModelClient, url: str, steps: Steps, X: Any, y: Any) -> None:
    print("Errors, provoked on purpose:")
    status = client.status()
    max_loaded, slots = status["inference"]["max_models"], status["training"]["slots"]
    kept = NAMES[1]
    steps.expect("load an unknown name", 404, lambda: client.load("no-such-model"))
    steps.expect("fit a duplicate name", 409, lambda: client.fit(kept, "LogisticRegression", X, y))
    steps.expect("predict on an unloaded model", 409, lambda: client.predict(kept, X[:1]))

    # One more trained model than the cap allows: load all but the last, then the last.
    over_cap = [f"{PREFIX}-cap-{i}" for i in range(max_loaded + 1)]
    for name in over_cap:
        client.fit(name, "LogisticRegression", X, y)
    for name in over_cap[:-1]:
        client.load(name)
    steps.expect(
        f"load past MAX_INFERENCE_MODELS={max_loaded}", 409, lambda: client.load(over_cap[-1])
    )
    steps.expect(
        "predict with the wrong number of features",
        422,
        lambda: client.predict(over_cap[0], [[1.0]]),
    )
    for name in over_cap[:-1]:
        client.unload(name)

    steps.expect(
        "fit with ragged X",
        422,
        lambda: client.fit("bad", "LogisticRegression", [[1.0], [1.0, 2.0]], ["a", "b"]),
    )
    steps.expect(
        "fit a column of numbers and words",
        422,
        lambda: client.fit("bad", "LogisticRegression", [[1.5], ["abc"]], ["a", "b"]),
    )
    steps.expect(
        "fit a categorical column with a fraction",
        422,
        lambda: client.fit(
            "bad", "LogisticRegression", [[415], [2.5]], ["a", "b"], categorical_features=[0]
        ),
    )
    steps.expect("fit an unknown model type", 422, lambda: client.fit("bad", "NoSuchModel", X, y))
    steps.expect(
        "fit an unknown hyperparameter",
        422,
        lambda: client.fit("bad", "LogisticRegression", X, y, {"bogus": 1}),
    )
    steps.expect(
        "fit with an invalid name", 422, lambda: client.fit("../etc", "LogisticRegression", X, y)
    )
    steps.expect(
        f"fit with all {slots} training slot(s) busy",
        503,
        lambda: fit_while_slots_busy(url, slots, X, y),
    )


def jobs_and_cancel(client: ModelClient, url: str, steps: Steps, X: Any, y: Any) -> None:
    print("Jobs and cancel:")
    busy = f"{PREFIX}-job"
    job = steps.expect(
        "start a fit without waiting (wait=false)",
        202,
        lambda: client.fit(busy, BUSY_TYPE, X, y, BUSY_HYPERPARAMETERS, wait=False),
    )
    if job:
        steps.expect("read its job", 200, lambda: client.job(job))
        steps.expect("cancel it", 200, lambda: client.cancel(job))
        steps.expect("cancel it again", 409, lambda: client.cancel(job))
    steps.expect("cancel an unknown job", 404, lambda: client.cancel("0123456789abcdef"))
    steps.expect(
        "a waiting fit whose job is cancelled", 409, lambda: waiting_fit_cancelled(url, X, y)
    )
    steps.expect(
        "a fit past its max_seconds",
        422,
        lambda: client.fit(busy, BUSY_TYPE, X, y, BUSY_HYPERPARAMETERS, max_seconds=0.5),
    )
    done = steps.expect(
        "a quick fit, started and waited for",
        200,
        lambda: client.wait(client.fit(busy, "LogisticRegression", X, y, wait=False)),
    )
    if done:
        finished = client.jobs()["jobs"][0]
        steps.expect("cancel a job that has succeeded", 409, lambda: client.cancel(finished))


def clean_up(client: ModelClient, steps: Steps) -> None:
    print("Clean-up:")
    others = [
        m["name"] for m in client.models()["models"] if not m["name"].startswith(f"{PREFIX}-")
    ]
    if others:  # remove_all would delete them too: remove only this demo's models
        print(f"  the server holds other models ({', '.join(others)}): remove_all skipped")
        for name in [m["name"] for m in client.models()["models"] if m["name"] not in others]:
            steps.expect(f"remove {name}", 200, partial(client.remove, name))
        return
    answer = steps.expect("remove_all", 200, client.remove_all)
    if answer:
        print(f"      removed {answer['removed']}")


def main() -> int:
    args = cli.parse(cli.parser(__doc__.splitlines()[0]))
    client = ModelClient(args.url)
    steps = Steps()
    X, y = make_data(quick=True)
    for info in client.models()["models"]:  # what an earlier, interrupted run left
        if info["name"].startswith(f"{PREFIX}-"):
            client.remove(info["name"])

    life_cycle(client, steps, X, y)
    errors(client, args.url, steps, X, y)
    jobs_and_cancel(client, args.url, steps, X, y)
    clean_up(client, steps)

    print("\nSummary:")
    print(table(["step", "expected", "got", "", "message"], steps.rows))
    print(f"{len(steps.rows) - steps.failed} as expected, {steps.failed} not")
    return 1 if steps.failed else 0


def fit_while_slots_busy(url: str, slots: int, X: Any, y: Any) -> Any:
    """Fill every slot with a fit of a few seconds, then ask for one more."""
    busy = [f"{PREFIX}-busy-{i + 1}" for i in range(slots)]
    threads = [
        threading.Thread(
            target=ModelClient(url).fit, args=(name, BUSY_TYPE, X, y, BUSY_HYPERPARAMETERS)
        )
        for name in busy
    ]
    for thread in threads:
        thread.start()
    watcher = ModelClient(url)
    try:
        deadline = time.monotonic() + BUSY_WAIT_SECONDS
        while watcher.status()["training"]["active"] < slots:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the {slots} busy fits did not all start within {BUSY_WAIT_SECONDS} s"
                )
            time.sleep(0.05)
        return ModelClient(url).fit(f"{PREFIX}-one-too-many", "LogisticRegression", X, y)
    finally:
        for thread in threads:
            thread.join()


def waiting_fit_cancelled(url: str, X: Any, y: Any) -> Any:
    """A fit that waits (v1 style) in one thread; its job cancelled from another."""
    name = f"{PREFIX}-waiting"
    outcome: dict[str, Any] = {}

    def fit() -> None:
        try:
            outcome["answer"] = ModelClient(url).fit(name, BUSY_TYPE, X, y, BUSY_HYPERPARAMETERS)
        except ApiError as error:
            outcome["error"] = error

    thread = threading.Thread(target=fit)
    thread.start()
    watcher = ModelClient(url)
    try:
        deadline = time.monotonic() + BUSY_WAIT_SECONDS
        while not (
            running := [j for j in watcher.status()["training"]["jobs"] if j["name"] == name]
        ):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the fit of {name} did not start within {BUSY_WAIT_SECONDS} s")
            time.sleep(0.05)
        watcher.cancel(running[0]["id"])
    finally:
        thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["answer"]


if __name__ == "__main__":
    cli.run(main)
