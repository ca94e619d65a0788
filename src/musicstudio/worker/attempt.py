"""State shared between the render thread and the worker's event loop for one attempt."""

from __future__ import annotations

import asyncio
import threading


class AttemptState:
    """Progress flows from the render thread; cancel, lease loss and shutdown flow back to it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._progress = 0
        self.progress_changed = asyncio.Event()
        self.cancel_requested = False
        self.lease_lost = False
        # The worker is shutting down and its soft timeout passed: the render is asked to
        # stop and the job is handed back to the queue; this attempt records no outcome.
        self.stopping = False
        self.released = False  # the hand-back committed: the lease is no longer ours
        # The completion is under way: a heartbeat finding the lease gone may just have raced
        # it (the completion logs its own outcome, "lost" included).
        self.completing = False

    @property
    def progress(self) -> int:
        with self._lock:
            return self._progress

    def report(self, value: int) -> None:
        """Called from the render thread; wakes the loop only when progress moved."""
        with self._lock:
            if value <= self._progress:
                return
            self._progress = value
        self._loop.call_soon_threadsafe(self.progress_changed.set)

    def cancelled(self) -> bool:
        """Called from the render thread at each checkpoint."""
        return self.cancel_requested or self.lease_lost or self.stopping
