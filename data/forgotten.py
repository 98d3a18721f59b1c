"""The users who asked to be forgotten, per data set, so that a rebuild from raw files keeps them out."""
from __future__ import annotations

import json
import os
from pathlib import Path


class ForgottenUsers:
    def __init__(self, path: Path):
        self.path = Path(path)

    def _read(self) -> dict[str, list[str]]:
        if not self.path.exists():
            return {}
        return json.loads(self.path.read_text())

    def of(self, dataset: str) -> set[str]:
        return set(self._read().get(dataset, []))

    def add(self, dataset: str, user_id: str) -> None:
        data = self._read()
        data[dataset] = sorted(set(data.get(dataset, [])) | {user_id})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, self.path)
