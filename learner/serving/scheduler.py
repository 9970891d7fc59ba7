"""The model thread: admits queued requests into the running batch between decode steps, and runs adapter loads there."""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from maro.learner.serving.batch import DecodeBatch, Row
from maro.learner.serving.engine import AdapterStore, GenerationEngine, RowOutput, RowRequest, row_generator
from maro.learner.serving.prefix import PrefixCache

log = logging.getLogger(__name__)

LATEST = "latest"  # adapter key resolved to the store's current version when the request is admitted


class QueueFull(Exception):
    """The waiting queue holds `max_queue` requests already."""


@dataclass(eq=False)
class Job:
    """One request: its rows (n choices), the adapter key it asked for, and callbacks into its handler.

    Callbacks run on the model thread and must only hand work over (e.g. `call_soon_threadsafe`):
    `on_start(adapter)` once admitted, `on_token(index, row)` per token when `stream`,
    `on_done(index, output)` per finished row, `on_error(exc)` if the job fails as a whole.
    """

    rows: list[RowRequest]
    adapter: str | None
    seed: int | None = None
    stream: bool = False
    on_start: Callable[[str | None], None] = lambda adapter: None
    on_token: Callable[[int, Row], None] = lambda index, row: None
    on_done: Callable[[int, RowOutput], None] = lambda index, output: None
    on_error: Callable[[BaseException], None] = lambda exc: None
    live: list[Row] = field(default_factory=list)
    cancelled: bool = False

    def cancel(self) -> None:
        """Safe from any thread: a queued job is skipped, rows in flight leave before the next step."""
        self.cancelled = True
        for row in self.live:
            row.cancelled = True


class Scheduler:
    """Owns the model: one thread runs prefills, decode steps and adapter operations, never two at once.

    Between two decode steps it (1) runs queued calls such as adapter reloads, (2) drops rows of
    cancelled jobs, (3) prefills waiting jobs that fit in `max_batch_size` rows and merges them in.
    An idle batch waits `batch_wait_ms` after the first arrival so companions share the prefill.
    """

    def __init__(self, engine: GenerationEngine, store: AdapterStore, *, max_batch_size: int = 8,
                 max_queue: int = 256, batch_wait_ms: float = 15, prefix_cache_tokens: int = 0):
        self.engine, self.store = engine, store
        self.max_batch_size, self.max_queue, self.batch_wait_s = max_batch_size, max_queue, batch_wait_ms / 1000
        self.prefixes = PrefixCache(prefix_cache_tokens) if prefix_cache_tokens else None
        self.batch = DecodeBatch(engine, self.prefixes)
        store.in_use = lambda: {r.adapter for r in self.batch.rows if r.adapter}
        self._waiting: deque[Job] = deque()
        self._calls: deque[tuple[Callable, concurrent.futures.Future]] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.stats = {"requests": 0, "rows": 0, "batches": 0, "steps": 0, "tokens": 0, "max_batch_rows": 0,
                      "cancelled": 0, "rejected": 0, "reloads": 0, "prefill_tokens": 0, "prefill_s": 0.0,
                      "decode_rows": 0, "decode_s": 0.0}
        """Counters since start; `prefill_*` and `decode_*` say where the model thread's time goes
        (prompt tokens prefilled and their seconds; rows stepped, summed over steps, and theirs)."""

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="maro-model", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def snapshot(self) -> dict:
        reuse = {"prefix_hits": self.prefixes.hits, "prefix_reused_tokens": self.prefixes.reused_tokens} if self.prefixes else {}
        return {**self.stats, **reuse, "waiting": len(self._waiting), "running": len(self.batch.rows)}

    def submit(self, job: Job) -> None:
        """Queue a job; raises QueueFull when `max_queue` jobs already wait."""
        self.start()
        with self._cond:
            if len(self._waiting) >= self.max_queue:
                self.stats["rejected"] += 1
                raise QueueFull
            self._waiting.append(job)
            self.stats["requests"] += 1
            self._cond.notify_all()

    def call(self, fn: Callable) -> concurrent.futures.Future:
        """Run `fn()` on the model thread between two steps; its result lands in the returned future."""
        self.start()
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._cond:
            self._calls.append((fn, future))
            self._cond.notify_all()
        return future

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not (self._stopping or self._waiting or self._calls or self.batch.rows):
                    self._cond.wait()
                if self._stopping:
                    break
            self._run_calls()
            self._count_cancelled(self.batch.drop_cancelled())
            self._admit()
            if self.batch.rows:
                stepped, started = len(self.batch.rows), time.perf_counter()
                try:
                    done = self.batch.step()
                except Exception as exc:  # noqa: BLE001 - the batch is lost, but the server goes on
                    log.exception("decode step failed")
                    self._fail(self.batch.fail_all(), exc)
                    continue
                self.stats["steps"] += 1
                self.stats["decode_rows"] += stepped
                self.stats["decode_s"] += time.perf_counter() - started
                self.stats["tokens"] += len(self.batch.rows) + len(done)
                self.stats["max_batch_rows"] = max(self.stats["max_batch_rows"], len(self.batch.rows) + len(done))
        self._fail(self.batch.fail_all(), RuntimeError("model server stopped"))
        for job in self._waiting:
            job.on_error(RuntimeError("model server stopped"))

    def _run_calls(self) -> None:
        while self._calls:
            with self._cond:
                fn, future = self._calls.popleft()
            try:
                future.set_result(fn())
            except Exception as exc:  # noqa: BLE001 - reported to the caller
                future.set_exception(exc)

    def _take(self) -> list[Job]:
        """Waiting jobs that fit now, oldest first; a job wider than the batch runs once the batch is empty."""
        taken, room = [], self.max_batch_size - len(self.batch.rows)
        with self._cond:
            while self._waiting:
                job = self._waiting[0]
                if job.cancelled:
                    self._waiting.popleft()
                    self.stats["cancelled"] += len(job.rows)
                    continue
                if len(job.rows) > room and (taken or self.batch.rows):
                    break
                taken.append(self._waiting.popleft())
                room -= len(job.rows)
        return taken

    def _admit(self) -> None:
        if not self._waiting:
            return
        if not self.batch.rows and self.batch_wait_s > 0:
            deadline = time.monotonic() + self.batch_wait_s
            with self._cond:
                while sum(len(j.rows) for j in self._waiting) < self.max_batch_size and not self._stopping:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
        rows = []
        for job in self._take():
            try:
                adapter = self.store.current if job.adapter == LATEST else job.adapter
                self.store.ensure(adapter)  # an evicted or never-loaded version loads on demand
            except Exception as exc:  # noqa: BLE001 - this job fails, the others go on
                job.on_error(exc)
                continue
            job.live = [self._row(job, i, r, adapter) for i, r in enumerate(job.rows)]
            job.on_start(adapter)
            rows += job.live
        if not rows:
            return
        started = time.perf_counter()
        try:
            self.batch.admit(rows)
        except Exception as exc:  # noqa: BLE001 - the prefill's rows fail; the batch survives unless it was touched
            log.exception("prefill failed")
            merged = any(r in self.batch.rows for r in rows)
            self._fail(self.batch.fail_all() if merged else rows, exc)
            return
        self.stats["prefill_s"] += time.perf_counter() - started
        self.stats["prefill_tokens"] += sum(len(r.request.prompt_ids) for r in rows)
        self.stats["batches"] += 1
        self.stats["rows"] += len(rows)
        self.stats["tokens"] += len(rows)

    def _row(self, job: Job, index: int, request: RowRequest, adapter: str | None) -> Row:
        def on_token(row: Row) -> None:
            if job.stream:
                job.on_token(index, row)
            if row.output is not None:
                job.on_done(index, row.output)

        row = Row(request, adapter, row_generator(job.seed, index), on_token=on_token)
        row.cancelled = job.cancelled
        return row

    def _count_cancelled(self, rows: list[Row]) -> None:
        self.stats["cancelled"] += len(rows)
        for row in rows:
            row.on_token(row)

    def _fail(self, rows: list[Row], exc: BaseException) -> None:
        """End `rows` with finish_reason "error"; their handlers answer 500 (the cause is in the log)."""
        log.warning("%d rows failed: %s", len(rows), exc)
        for row in rows:
            row.finish_reason = "error"
            row.output = RowOutput("", list(row.tokens), "error", [])
            row.on_token(row)
