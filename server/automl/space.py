"""What a search tries, in which order: each type's defaults first, then draws from its
space (each type's `space`, server.algorithms), the types taking turns; reproducible for a
seed (numpy's PCG64).

Every type that has a seed gets the search's (its `seed_parameter`). The types that stop
early (`stops_early`) do after EARLY_STOPPING_ROUNDS rounds without improvement on the
held-out rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from server.algorithms import resolve

EARLY_STOPPING_ROUNDS = 20


def candidates(model_types: list[str], seed: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """(model type, hyperparameters), endlessly: the defaults of each type, then draws."""
    rng = np.random.default_rng(seed)

    def seeded(model_type: str, drawn: dict[str, Any]) -> dict[str, Any]:
        parameter = resolve(model_type).seed_parameter
        return drawn if parameter is None else {**drawn, parameter: seed}

    for model_type in model_types:
        yield model_type, seeded(model_type, {})
    while True:
        for model_type in model_types:
            yield model_type, seeded(model_type, resolve(model_type).space(rng))
