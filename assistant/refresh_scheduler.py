"""Runs `recsys refresh` in a separate, low-priority process every N new events or every T minutes.

The refresh process gets one torch thread and a raised nice value, so serving keeps a core. Its
crash or kill changes nothing for serving (see assistant.refresh); the next trigger tries again.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from data.feedback import FeedbackStore


class RefreshScheduler(threading.Thread):
    def __init__(self, store: FeedbackStore, dataset: str, every_events: int, every_minutes: float,
                 model: str = "smollm2", env: dict | None = None, cwd: Path | None = None,
                 poll_seconds: float = 30.0, log=print):
        super().__init__(daemon=True, name="refresh-scheduler")
        if every_events <= 0 and every_minutes <= 0:
            raise ValueError("the refresh scheduler needs every_events > 0 or every_minutes > 0")
        self.store = store
        self.dataset = dataset
        self.every_events = every_events
        self.every_minutes = every_minutes
        self.model = model
        self.env = env
        self.cwd = cwd
        self.poll_seconds = poll_seconds
        self.log = log
        self.runs: list[dict] = []
        self._stopping = threading.Event()
        self._last_seq = store.last_seq()
        self._last_time = time.time()

    def due(self) -> bool:
        new = self.store.last_seq() - self._last_seq
        if new <= 0:
            return False
        if self.every_events > 0 and new >= self.every_events:
            return True
        return self.every_minutes > 0 and time.time() - self._last_time >= self.every_minutes * 60

    def command(self) -> list[str]:
        return [sys.executable, "-m", "ui.cli", "refresh", "--dataset", self.dataset, "--model", self.model,
                "--threads", "1"]

    def run_once(self) -> int:
        self._last_seq, self._last_time = self.store.last_seq(), time.time()
        env = {**(self.env or os.environ), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        started = time.time()
        self.log(f"refresh: starting ({' '.join(self.command()[1:])})")
        proc = subprocess.run(self.command(), env=env, cwd=self.cwd, preexec_fn=lambda: os.nice(10),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        tail = (proc.stdout or "").strip().splitlines()[-1:] or [""]
        self.runs.append({"started": started, "seconds": round(time.time() - started, 1),
                          "returncode": proc.returncode, "last_line": tail[0][-300:]})
        self.log(f"refresh: exit {proc.returncode} after {time.time() - started:.0f} s: {tail[0][-200:]}")
        return proc.returncode

    def run(self) -> None:
        while not self._stopping.wait(self.poll_seconds):
            if self.due():
                self.run_once()

    def stop(self) -> None:
        self._stopping.set()
