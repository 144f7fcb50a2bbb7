"""Which cores the trainings may use: every core the server may, but one.

The server answers requests and predicts in its own process; a training process is one busy
core. With two or more cores allowed (os.sched_getaffinity: in a container, its cpuset), the
lowest is the server's own: trainings are pinned to the others, so no fit ever runs there,
and they need no lower priority to leave the server alone. Beside unrelated busy processes a
training then gets its fair share of its cores (`nice 10`, the old default, left it a tenth
of one). The server itself is not pinned: its inference threads may use a training core
while it is idle.

With one core allowed there is nothing to split: trainings share it with the server at a
lower priority (TRAINING_NICE, 10 when not set) so that requests still come first. More
slots than training cores (TRAINING_CORES above the cores there are) share the training
cores.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

SHARED_NICE = 10  # trainings on the server's core: requests first


@dataclass(frozen=True)
class CorePlan:
    server_core: int | None  # the core no training uses; None: no pinning
    training_cores: frozenset[int] | None  # where trainings run; None: wherever the server may
    nice: int  # how much lower the trainings' priority is

    def describe(self) -> str:
        if self.training_cores is None:
            return f"trainings share the server's core(s) at nice {self.nice}"
        cores = ",".join(str(core) for core in sorted(self.training_cores))
        return (
            f"core {self.server_core} is the server's own; trainings run on core(s) {cores} "
            f"at nice {self.nice}"
        )

    def sharing(self, slots: int) -> str | None:
        """What to tell a user whose slots outnumber the training cores, or None."""
        cores = len(self.training_cores) if self.training_cores is not None else None
        if cores is None or slots <= cores:
            return None
        return (
            f"{slots} training slots share {cores} training core(s): fits run at once but "
            f"take longer each, and together no less time; TRAINING_CORES={cores + 1} matches "
            "the cores this server may use"
        )


def allowed_cores() -> frozenset[int]:
    """The cores this process may run on (its affinity, which a container's cpuset sets)."""
    if hasattr(os, "sched_getaffinity"):
        return frozenset(os.sched_getaffinity(0))
    return frozenset(range(os.cpu_count() or 1))  # no affinity on this platform


def plan_cores(allowed: frozenset[int], pin: bool, nice: int | None) -> CorePlan:
    """One core for the server and the rest for trainings, where there are two or more and
    `pin` (PIN_TRAINING_CORES) is on; `nice` (TRAINING_NICE) overrides the priority."""
    if pin and len(allowed) >= 2 and hasattr(os, "sched_setaffinity"):
        server = min(allowed)
        return CorePlan(server, allowed - {server}, 0 if nice is None else nice)
    return CorePlan(None, None, SHARED_NICE if nice is None else nice)
