"""The compose profile `replicas`, checked from outside as a user would: a model trained and
loaded on the primary is answered through the balancer by both replicas, and a promote on
the primary reaches them with no failed request.

    python -m devtools.replicas_smoke [PRIMARY_URL] [BALANCER_URL]

(docs/replicas.md: run by the container check with the profile up.)"""

from __future__ import annotations

import sys
import time
from collections import Counter

import httpx

NAME = "replicas-smoke"
X = [[0.1, 1.0], [0.4, 0.2], [0.9, 0.5], [0.3, 0.8], [0.7, 0.1], [0.2, 0.6]]
BODY = {
    "X": X,
    "y": [0, 1, 1, 0, 1, 0],
    "config": {"name": NAME, "model_type": "LogisticRegression"},
}
ROW = {"X": [X[0]], "config": {"name": NAME}}


def wait_for(what: str, condition, timeout: float = 120.0) -> float:
    started = time.monotonic()
    while True:
        try:
            if condition():
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        if time.monotonic() - started > timeout:
            raise SystemExit(f"replicas smoke: timed out waiting for {what}")
        time.sleep(0.05)


def main(primary: str, balancer: str) -> None:
    wait_for("the primary", lambda: httpx.get(f"{primary}/health").status_code == 200)
    wait_for("the balancer", lambda: httpx.get(f"{balancer}/health").status_code == 200)
    httpx.post(f"{primary}/remove", json={"config": {"name": NAME}}, timeout=30)
    assert httpx.post(f"{primary}/fit", json=BODY, timeout=120).status_code == 201
    assert httpx.post(f"{primary}/load", json={"config": {"name": NAME}}).status_code == 200
    seconds = wait_for(
        "both replicas to serve it",
        lambda: httpx.post(f"{balancer}/predict", json=ROW).status_code == 200,
    )
    served_by = Counter(
        httpx.post(f"{balancer}/predict", json=ROW).headers["x-served-by"] for _ in range(40)
    )
    print(f"loaded on the primary; through the balancer after {seconds:.2f} s: {dict(served_by)}")
    assert set(served_by) == {"replica-1", "replica-2"}, served_by
    refused = httpx.post(f"{balancer}/load", json={"config": {"name": NAME}})
    assert refused.status_code == 409 and "replica" in refused.json()["detail"], refused.text

    second = {**BODY, "config": {**BODY["config"], "new_version": True}}
    assert httpx.post(f"{primary}/fit", json=second, timeout=120).status_code == 201
    answers: Counter[tuple[int, int | None]] = Counter()
    assert httpx.post(f"{primary}/models/{NAME}/promote", json={"version": 2}).status_code == 200
    promoted = time.monotonic()

    def on_two_everywhere() -> bool:
        replies = [httpx.post(f"{balancer}/predict", json=ROW) for _ in range(4)]
        for reply in replies:
            answers[(reply.status_code, reply.json().get("version"))] += 1
        return all(reply.json().get("version") == 2 for reply in replies)

    wait_for("the promote to reach both replicas", on_two_everywhere, timeout=10)
    took = time.monotonic() - promoted
    print(
        f"promote answered -> both replicas on version 2 in {took:.2f} s; answers {dict(answers)}"
    )
    assert all(status == 200 for status, _ in answers), answers
    httpx.post(f"{primary}/remove", json={"config": {"name": NAME}}, timeout=30)
    print("replicas smoke: OK")


if __name__ == "__main__":
    main(*(sys.argv[1:] or ["http://127.0.0.1:8000", "http://127.0.0.1:8080"]))
