"""One core for the server, the others for trainings: the plan, and the affinity and priority
read back from real training processes, with enough cores and with too few."""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import pytest

from server.config import Settings
from server.training.cores import SHARED_NICE, plan_cores
from tests.helpers import wait_until
from tests.servers import training_processes, uvicorn_server

pytestmark = pytest.mark.anyio
ALLOWED = frozenset(os.sched_getaffinity(0))
needs_two_cores = pytest.mark.skipif(len(ALLOWED) < 2, reason="needs two allowed cores")


def test_the_lowest_allowed_core_is_the_servers_and_trainings_get_the_rest() -> None:
    plan = plan_cores(frozenset({2, 3, 5}), pin=True, nice=None)
    assert plan.server_core == 2
    assert plan.training_cores == {3, 5}
    assert plan.nice == 0  # cores of their own: no need to yield to the server
    assert "core 2 is the server's own" in plan.describe()


def test_with_one_core_trainings_share_it_at_a_lower_priority() -> None:
    plan = plan_cores(frozenset({4}), pin=True, nice=None)
    assert (plan.server_core, plan.training_cores, plan.nice) == (None, None, SHARED_NICE)
    assert "share" in plan.describe()


def test_slots_beyond_the_training_cores_are_named() -> None:
    plan = plan_cores(frozenset({0, 1}), pin=True, nice=None)
    assert plan.sharing(1) is None
    assert "TRAINING_CORES=2 matches" in (plan.sharing(3) or "")


def test_pinning_can_be_turned_off_and_the_priority_set() -> None:
    assert plan_cores(frozenset({0, 1}), pin=False, nice=None).training_cores is None
    assert plan_cores(frozenset({0, 1}), pin=True, nice=7).nice == 7


async def _settled_training_processes(
    pid: int, count: int, cores: set[int], nice: int
) -> list[psutil.Process]:
    """The server's warm training processes once each has run its initializer (they exist
    a moment before): fails after the timeout if the affinity or priority never comes."""

    def settled(process: psutil.Process) -> bool:
        return set(process.cpu_affinity()) == cores and process.nice() == nice

    async def ready() -> bool:
        processes = training_processes(pid)
        return len(processes) == count and all(settled(p) for p in processes)

    await wait_until(ready, timeout=60, what=f"{count} training processes on {cores}, nice {nice}")
    return training_processes(pid)


@needs_two_cores
async def test_training_processes_run_off_the_servers_core(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with uvicorn_server(tmp_path / "models", training_cores=3, log=log) as (_, server):
        server_core = min(ALLOWED)
        await _settled_training_processes(server.pid, 2, set(ALLOWED - {server_core}), 0)
        # The server itself may still use every allowed core (its inference threads).
        assert set(psutil.Process(server.pid).cpu_affinity()) == ALLOWED
    printed = log.read_text()
    assert f"cores: core {server_core} is the server's own" in printed
    if len(ALLOWED) == 2:  # two slots, one training core: the log says so
        assert "2 training slots share 1 training core(s)" in printed


async def test_on_a_single_core_trainings_share_it_at_nice_10(tmp_path: Path) -> None:
    core = min(ALLOWED)
    log = tmp_path / "server.log"
    with uvicorn_server(tmp_path / "models", training_cores=2, log=log, cores={core}) as (
        _,
        server,
    ):
        await _settled_training_processes(server.pid, 1, {core}, SHARED_NICE)
    assert "cores: trainings share the server's core(s) at nice 10" in log.read_text()


def test_the_default_training_cores_follow_the_cores_the_process_may_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 45, item 7: the default was 4 whatever the machine (3 slots on one core of a
    2-core machine); `.env` or the environment still set any number."""
    monkeypatch.delenv("TRAINING_CORES", raising=False)
    allowed = len(os.sched_getaffinity(0))
    assert Settings(_env_file=None).training_cores == max(2, allowed)  # type: ignore[call-arg]
    monkeypatch.setenv("TRAINING_CORES", "7")
    assert Settings(_env_file=None).training_cores == 7  # type: ignore[call-arg]
