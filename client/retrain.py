"""Retrain, promote and roll back while the model serves: `python -m client.retrain`.

Trains version 1 of a model and loads it, then keeps predicting with several connections
the whole time while it trains version 2 on newer data, compares the two versions'
validation scores, promotes version 2, and rolls back to version 1. At the end it prints,
second by second, which version answered, and how many requests failed (the swaps promise
none). Exit status 1 if any request failed.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from typing import Any

from client import cli
from client.async_client import AsyncModelClient
from client.calls import ApiError
from client.plans import make_data
from client.report import table

NAME = "retrain-demo"
CONNECTIONS = 8
SETTLE_SECONDS = 2.0  # of predictions between steps, so each shows in the timeline


class Traffic:
    """Predictions sent over and over by `CONNECTIONS` tasks; each answer's second and
    version, and every failure, are kept."""

    def __init__(self, client: AsyncModelClient, rows: list[list[float]]) -> None:
        self._client = client
        self._rows = rows
        self.started = time.monotonic()
        self.answers: defaultdict[int, Counter[int]] = defaultdict(Counter)
        self.failures: list[str] = []
        self._running = True

    async def _send(self, index: int) -> None:
        while self._running:
            row = self._rows[index % len(self._rows)]
            index += CONNECTIONS
            try:
                answer = await self._client.predict(NAME, [row])
            except ApiError as error:
                self.failures.append(f"{error.status}: {error.detail}")
                continue
            second = int(time.monotonic() - self.started)
            self.answers[second][answer["version"]] += 1

    async def run_until(self, done: asyncio.Event) -> None:
        senders = [asyncio.create_task(self._send(i)) for i in range(CONNECTIONS)]
        await done.wait()
        self._running = False
        await asyncio.gather(*senders)

    def timeline(self) -> list[list[Any]]:
        return [
            [second, *(self.answers[second].get(v, 0) for v in (1, 2))]
            for second in sorted(self.answers)
        ]


def _score(model: dict[str, Any]) -> str:
    validation = model.get("validation") or {}
    scores = validation.get("scores") or {}
    return f"{scores.get('accuracy', float('nan')):.3f}"


async def demo(url: str, quick: bool) -> int:
    X_old, y_old = make_data(quick, seed=7)
    X_new, y_new = make_data(quick, seed=8)  # this week's data
    async with AsyncModelClient(url, max_connections=CONNECTIONS + 4) as client:
        try:
            await client.remove(NAME)
        except ApiError as error:
            if error.status != 404:
                raise
        first = await client.fit(NAME, "LogisticRegression", X_old, y_old, validation_fraction=0.2)
        await client.load(NAME)
        print(f"version 1 trained and serving; validation accuracy {_score(first)}")
        traffic, done = Traffic(client, X_new[:200]), asyncio.Event()
        serving = asyncio.create_task(traffic.run_until(done))
        await asyncio.sleep(SETTLE_SECONDS)
        second = await client.fit(
            NAME, "RandomForestClassifier", X_new, y_new,
            hyperparameters={"n_estimators": 50}, validation_fraction=0.2, new_version=True,
        )  # fmt: skip
        print(f"version 2 trained (not serving yet); validation accuracy {_score(second)}")
        started = time.monotonic()
        await client.promote(NAME, 2)
        print(f"promoted version 2 in {time.monotonic() - started:.2f} s (loaded, then switched)")
        await asyncio.sleep(SETTLE_SECONDS)
        await client.rollback(NAME)
        print("rolled back to version 1")
        await asyncio.sleep(SETTLE_SECONDS)
        done.set()
        await serving
        history = (await client.history(NAME))["history"]
        await client.remove(NAME)
    print("\nAnswers per second, by the version that gave them")
    print(table(["second", "version 1", "version 2"], traffic.timeline()))
    print("\nMoves of the current version:")
    for move in history:
        print(f"  {move['at']}  {move['pointer']}: {move['from']} -> {move['to']}")
    total = sum(sum(counts.values()) for counts in traffic.answers.values())
    print(f"\n{total} predictions answered, {len(traffic.failures)} failed")
    for failure in sorted(set(traffic.failures))[:5]:
        print(f"  {failure}")
    return 1 if traffic.failures else 0


def main() -> int:
    args = cli.parse(cli.parser(__doc__.splitlines()[0]))
    return asyncio.run(demo(args.url, args.quick))


if __name__ == "__main__":
    cli.run(main)
