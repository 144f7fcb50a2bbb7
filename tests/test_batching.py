"""Micro-batching: concurrent predictions merge into one call, each gets its own answer."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from server.algorithms import resolve
from server.errors import InvalidInput
from server.inference.batching import BatchingSettings, PredictionBatcher
from server.inference.compiled.choice import RuntimeChoice
from server.inference.compiled.runtimes import EstimatorNeeded, LazyNativeRuntime, NativeRuntime
from server.inference.loaded import LoadedModel

pytestmark = pytest.mark.anyio


class RecordingEstimator:
    """Predicts the row's first feature as the class index; records every call's size.
    The first call can be held open, as a slow prediction would be."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.threads: list[str] = []  # where each predict ran
        self.release = threading.Event()
        self.release.set()

    def predict(self, X: np.ndarray) -> np.ndarray:
        self.calls.append(len(X))
        self.threads.append(threading.current_thread().name)
        self.release.wait(10)
        if (X[:, 0] < 0).any():  # a row the library refuses
            raise ValueError("negative class")
        return X[:, 0].astype(np.int64)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        self.calls.append(len(X))
        one_hot = np.zeros((len(X), 3))
        one_hot[np.arange(len(X)), X[:, 0].astype(np.int64)] = 1.0
        return one_hot


async def until(condition: Callable[[], object], timeout: float = 5.0) -> None:
    """Yield to the loop (and the estimator's thread) until `condition` holds, bounded."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.001)


def batcher(estimator: Any, inline_seconds: float = 0.0, max_rows: int = 1024) -> PredictionBatcher:
    choice = RuntimeChoice(NativeRuntime(estimator, {}), None, "the estimator")
    model = LoadedModel(
        "m", resolve("RandomForestClassifier"), choice, np.array(["a", "b", "c"]), 2, None, 0.001
    )
    settings = BatchingSettings(max_rows=max_rows, window=0.0, inline_budget=inline_seconds)
    return PredictionBatcher(model, settings)


def rows(*classes: int) -> np.ndarray:
    return np.array([[c, 0.0] for c in classes])


async def test_a_lone_request_runs_at_once_and_alone() -> None:
    estimator = RecordingEstimator()
    answer = await batcher(estimator).predict(rows(2, 0), probabilities=False)
    assert answer == {"name": "m", "version": 1, "predictions": ["c", "a"]}
    assert estimator.calls == [2]


async def test_requests_queued_behind_a_running_batch_share_one_call() -> None:
    estimator = RecordingEstimator()
    estimator.release.clear()  # the first prediction is slow
    serving = batcher(estimator)
    first = asyncio.create_task(serving.predict(rows(0), probabilities=False))
    await until(lambda: estimator.calls)  # the first call is inside the estimator
    queued = [
        asyncio.create_task(serving.predict(rows(i % 3, (i + 1) % 3), False)) for i in range(10)
    ]
    await until(lambda: serving.queued == 10)
    estimator.release.set()
    assert (await first)["predictions"] == ["a"]
    answers = [await task for task in queued]
    assert estimator.calls == [1, 20]  # ten requests of two rows: one call
    for i, answer in enumerate(answers):
        assert answer["predictions"] == [["a", "b", "c"][i % 3], ["a", "b", "c"][(i + 1) % 3]]


async def test_a_request_the_library_refuses_fails_alone_in_its_batch() -> None:
    estimator = RecordingEstimator()
    estimator.release.clear()
    serving = batcher(estimator)
    first = asyncio.create_task(serving.predict(rows(0), probabilities=False))
    await until(lambda: estimator.calls)
    good = asyncio.create_task(serving.predict(rows(1, 2), False))
    bad = asyncio.create_task(serving.predict(rows(-1), False))
    also_good = asyncio.create_task(serving.predict(rows(2), False))
    await until(lambda: serving.queued == 3)
    estimator.release.set()
    await first
    assert (await good)["predictions"] == ["b", "c"]
    assert (await also_good)["predictions"] == ["c"]
    with pytest.raises(InvalidInput, match="negative class"):
        await bad
    assert estimator.calls == [1, 4, 2, 1, 1]  # the batch, then each request alone


async def test_probabilities_and_labels_are_batched_apart_and_max_rows_holds() -> None:
    estimator = RecordingEstimator()
    estimator.release.clear()
    serving = batcher(estimator, max_rows=4)
    first = asyncio.create_task(serving.predict(rows(1), False))
    await until(lambda: estimator.calls)
    plain = [asyncio.create_task(serving.predict(rows(2, 2), False)) for _ in range(3)]
    proba = asyncio.create_task(serving.predict(rows(1), True))
    await until(lambda: serving.queued == 4)
    estimator.release.set()
    await first
    assert [(await t)["predictions"] for t in plain] == [["c", "c"]] * 3
    answer = await proba
    assert answer["probabilities"] == [[0.0, 1.0, 0.0]]
    assert answer["classes"] == ["a", "b", "c"]
    # 1, then at most 4 rows a call: [2+2 plain, then 1 proba] and [2 plain]
    assert estimator.calls[0] == 1
    assert max(estimator.calls) <= 4
    assert sum(estimator.calls) == 1 + 6 + 1


async def test_a_cheap_model_predicts_inline_and_a_cancelled_waiter_harms_no_one() -> None:
    estimator = RecordingEstimator()
    cheap = batcher(estimator, inline_seconds=1.0)
    assert (await cheap.predict(rows(1), False))["predictions"] == ["b"]

    estimator.release.clear()
    serving = batcher(estimator)
    first = asyncio.create_task(serving.predict(rows(0), False))
    await until(lambda: len(estimator.calls) == 2)
    gone = asyncio.create_task(serving.predict(rows(1), False))
    kept = asyncio.create_task(serving.predict(rows(2), False))
    await until(lambda: serving.queued == 2)
    gone.cancel()
    estimator.release.set()
    await first
    assert (await kept)["predictions"] == ["c"]
    assert gone.cancelled()


async def test_a_cheap_model_goes_to_the_batcher_when_requests_arrive_together() -> None:
    estimator = RecordingEstimator()
    cheap = batcher(estimator, inline_seconds=1.0)
    loop_thread = threading.current_thread().name
    # One at a time (each in a turn of the loop of its own, as requests that do not
    # overlap are): each one inline, on the event loop's thread.
    for label in (0, 1):
        assert (await cheap.predict(rows(label), False))["predictions"] == [["a", "b"][label]]
        await asyncio.sleep(0)  # the next turn of the loop
    assert estimator.threads == [loop_thread, loop_thread]
    # Three in the same turn of the loop: the first inline, the others merged into one call,
    # which is still cheap enough to run on the loop rather than hop to a thread.
    answers = await asyncio.gather(*(cheap.predict(rows(c), False) for c in (0, 1, 2)))
    assert [a["predictions"] for a in answers] == [["a"], ["b"], ["c"]]
    assert estimator.calls[2:] == [1, 2]
    assert estimator.threads[2:] == [loop_thread, loop_thread]


async def test_a_merged_batch_over_the_inline_budget_runs_in_a_thread() -> None:
    estimator = RecordingEstimator()
    tight = batcher(estimator, inline_seconds=0.0025)
    # 1 ms per call and 1 ms per row: one row fits the 2.5 ms budget, two don't.
    tight.model = dataclasses.replace(tight.model, seconds_per_row=0.001)
    loop_thread = threading.current_thread().name
    answers = await asyncio.gather(*(tight.predict(rows(c), False) for c in (0, 1, 2)))
    assert [a["predictions"] for a in answers] == [["a"], ["b"], ["c"]]
    assert estimator.calls == [1, 2]
    assert estimator.threads[0] == loop_thread
    assert estimator.threads[1] != loop_thread


async def test_a_request_of_the_wrong_width_is_refused_before_queueing() -> None:
    with pytest.raises(Exception, match="expects 2 features per row, got 3"):
        await batcher(RecordingEstimator()).predict(np.zeros((1, 3)), False)


async def test_an_estimator_read_lazily_is_read_once_and_never_on_the_event_loop() -> None:
    estimator = RecordingEstimator()
    reads: list[str] = []

    def read() -> RecordingEstimator:
        reads.append(threading.current_thread().name)
        return estimator

    lazy = LazyNativeRuntime(read, {})
    with pytest.raises(EstimatorNeeded):  # here, on the loop: never read
        lazy.estimator  # noqa: B018
    assert reads == []
    served = batcher(estimator, inline_seconds=1.0)  # cheap: it would run inline
    model = dataclasses.replace(
        served.model, choice=RuntimeChoice(lazy, None, "the estimator, read when needed")
    )
    served.model = model
    answers = await asyncio.gather(*(served.predict(rows(c), False) for c in (0, 1, 2)))
    assert [a["predictions"] for a in answers] == [["a"], ["b"], ["c"]]
    assert len(reads) == 1 and reads[0] != threading.current_thread().name
    assert estimator.threads and threading.current_thread().name not in estimator.threads[:1]
