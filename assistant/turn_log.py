"""One JSON line per turn under the home's logs/: what happened and how long it took. The request
text is written only when the operator turns it on (RECSYS_LOG_REQUESTS); user ids are hashed."""
from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path


class TurnLog:
    def __init__(self, path: Path, include_text: bool = False):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.include_text = include_text
        self._lock = threading.Lock()

    def write(self, session, text: str, reply, elapsed_ms: float) -> None:
        record = {"time": round(time.time(), 3),
                  "user": hashlib.sha256(session.user_id.encode()).hexdigest()[:12],
                  "session": session.session_id[:12], "kind": reply.kind, "items": len(reply.items),
                  "chars": len(text or ""), "ms": round(elapsed_ms, 1)}
        if self.include_text:
            record["text"] = text
        with self._lock, self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
