"""A function of the training process, named without importing it here.

Importing server.training.backends.local_worker pins the thread pools of the process that
imports it, so the server never does: it hands the pool `InChild("initialize")`, which
pickles by this light module's name, and the training process imports the worker module
when it first calls one.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

WORKER_MODULE = "server.training.backends.local_worker"


@dataclass(frozen=True)
class InChild:
    name: str
    module: str = WORKER_MODULE  # the explanation process's is server.explain.worker

    def __call__(self, *args: Any) -> Any:
        return getattr(importlib.import_module(self.module), self.name)(*args)
