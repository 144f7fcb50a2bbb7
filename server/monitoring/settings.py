"""Every name's capture setting in memory (the hot path asks it on every `/predict`), kept
signed in the store with its generation (server.monitoring.setting)."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

from server.errors import ModelNotFound
from server.monitoring import setting as setting_file
from server.monitoring.setting import CaptureSetting
from server.store.files import ModelStore

logger = logging.getLogger("server")


class Settings:
    def __init__(self, store: ModelStore) -> None:
        self.store = store
        self.by_name: dict[str, CaptureSetting] = {}
        self.refused: dict[str, str] = {}  # names whose stored setting is not followed: why
        self.generations: dict[str, int] = {}  # the index: each name's last generation

    def start(self, names: list[str]) -> None:
        """Read the names' settings from the store (blocking). A setting saved before v6 is
        written again with a generation, so that the old file can't be put back. A replica
        reads none: it follows the serving set."""
        if not names:
            return
        directories = {name: self.store.name_dir(name) for name in names}
        stored = setting_file.index_or_refused(self.store.root, self.store.key)
        found, self.refused, self.generations = setting_file.read_all(
            directories, self.store.key, stored
        )
        older = {name: s for name, s in found.items() if s.generation == 0}
        for name in older:
            self.generations[name] = 1
        if self.generations != (stored or {}):  # nothing set: no file made
            self._write_index()
        for name, setting in older.items():
            renewed = CaptureSetting(setting.capture, setting.sample_rate, setting.exclude,
                                     setting.ever, 1)  # fmt: skip
            setting_file.write(directories[name], self.store.key, name, renewed)
            found[name] = renewed
        self.by_name = {name: setting for name, setting in found.items() if setting.ever}

    def _write_index(self) -> None:
        setting_file.write_index(self.store.root, self.store.key, self.generations)

    def get(self, name: str) -> CaptureSetting:
        return self.by_name.get(name, CaptureSetting())

    def sampled(self, name: str) -> CaptureSetting | None:
        """The setting, if this request of `name` is to be captured."""
        found = self.by_name.get(name)
        if found is None or not found.capture:
            return None
        if found.sample_rate < 1.0 and random.random() >= found.sample_rate:
            return None
        return found

    async def change(
        self, name: str, capture: bool, sample_rate: float, exclude: list[str]
    ) -> CaptureSetting:
        if not self.store.exists(name):
            raise ModelNotFound(name)
        current = self.get(name)
        generation = max(current.generation, self.generations.get(name, 0)) + 1
        changed = CaptureSetting(
            capture, sample_rate, tuple(exclude), capture or current.ever, generation
        )
        await asyncio.to_thread(self._write, name, changed)
        self.by_name[name] = changed
        self.refused.pop(name, None)
        return changed

    def _write(self, name: str, changed: CaptureSetting) -> None:
        """The index first: a crash between the two refuses the file rather than follows it."""
        before = self.generations.get(name)
        self.generations[name] = changed.generation
        try:
            self._write_index()
        except BaseException:
            if before is None:
                self.generations.pop(name, None)
            else:
                self.generations[name] = before
            raise
        setting_file.write(self.store.name_dir(name), self.store.key, name, changed)

    def forget(self, name: str) -> None:
        """A removed name: out of memory and of the index (blocking)."""
        self.by_name.pop(name, None)
        self.refused.pop(name, None)
        if self.generations.pop(name, None) is not None:
            try:
                self._write_index()
            except OSError as error:  # its next life is refused until set: logged
                logger.error("%s could not be written: %s", setting_file.INDEX_NAME, error)

    def describe(self, name: str) -> dict[str, Any]:
        found = self.get(name)
        described = {
            "name": name,
            "capture": found.capture,
            "sample_rate": found.sample_rate,
            "capture_exclude": list(found.exclude),
        }
        if name in self.refused:
            described["refused"] = self.refused[name]
        return described

    def published(self, name: str) -> dict[str, Any] | None:
        """What the serving set carries to the replicas (None: capture never on)."""
        found = self.by_name.get(name)
        return found.to_json() if found is not None else None

    def adopt(self, name: str, found: dict[str, Any] | None) -> None:
        """A replica's: the setting the serving set carries."""
        if found is None:
            self.by_name.pop(name, None)
        else:
            self.by_name[name] = CaptureSetting.from_json(found)
