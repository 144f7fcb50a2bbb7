"""The gate in front of the training slots: a name trains at most once, and a fit with no free
slot is refused at once (503), never queued.

Claims happen on the event loop without an await, so of racing fits with one name exactly
one gets through, and the slot count is never exceeded. A name stays claimed until its job
has ended and whatever it left on disk has been cleaned up.
"""

from __future__ import annotations

from server.errors import ModelBusy, NoFreeSlot


class SlotGate:
    def __init__(self, retry_after_seconds: int) -> None:
        self._retry_after = retry_after_seconds
        self._claimed: set[str] = set()

    def claim(self, name: str, capacity: int) -> None:
        if name in self._claimed:
            raise ModelBusy(f"model '{name}' is being trained right now")
        if len(self._claimed) >= capacity:
            raise NoFreeSlot(
                f"all {capacity} training slot(s) are busy; retry in a few seconds",
                headers={"Retry-After": str(self._retry_after)},
            )
        self._claimed.add(name)

    def release(self, name: str) -> None:
        self._claimed.discard(name)

    def is_claimed(self, name: str) -> bool:
        return name in self._claimed

    @property
    def busy(self) -> int:
        return len(self._claimed)
