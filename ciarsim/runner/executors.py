"""Executors run the runner's tasks: in this process, in a local process pool, or on Ray.

An executor has one method, ``map(fn, jobs, args, on_done)``: call ``fn(job, *args)`` for every
job, calling ``on_done(job)`` as each finishes. Tasks communicate only through files (the trace
cache and the part files, all written atomically), so the executor never changes a result: the
runner gathers the parts in the plan's order afterwards.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Callable, Iterable, Protocol

from ciarsim.errors import MissingComponentError, UsageError


class Executor(Protocol):
    def map(self, fn: Callable, jobs: list, args: tuple, on_done: Callable) -> None: ...


class LocalExecutor:
    """Run tasks one after another in this process."""

    def map(self, fn: Callable, jobs: list, args: tuple, on_done: Callable) -> None:
        for job in jobs:
            fn(job, *args)
            on_done(job)


def _init_worker(threads: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    from ciarsim.nn.threads import set_torch_threads  # noqa: PLC0415 - loads torch in the worker only

    set_torch_threads(threads)


class PoolExecutor:
    """A local process pool (spawned workers; torch threads split between them).

    Two workers never decode the same trace set: the runner deduplicates decode tasks by key.
    Workers ignore SIGINT (they start with it blocked, so a Ctrl-C while they import is not a
    traceback in each of them): on Ctrl-C or an error the parent cancels the pending tasks and
    terminates the workers, killing any that do not stop within ``GRACE_S``; finished parts stay
    on disk, a part being written is left as a temporary file.
    """

    GRACE_S = 2.0

    def __init__(self, workers: int | None = None) -> None:
        if workers is not None and workers < 0:
            raise UsageError(f"--workers: expected 0 (one per CPU core) or more, got {workers}")
        self.workers = max(1, workers or os.cpu_count() or 1)

    def map(self, fn: Callable, jobs: list, args: tuple, on_done: Callable) -> None:
        if len(jobs) <= 1 or self.workers == 1:
            return LocalExecutor().map(fn, jobs, args, on_done)
        threads = max(1, (os.cpu_count() or 1) // self.workers)
        pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"),
                                   initializer=_init_worker, initargs=(threads,))  # fmt: skip
        try:
            with _sigint_blocked():  # submit() spawns the workers; they inherit the mask
                futures = {pool.submit(fn, job, *args): job for job in jobs}
            for fut in as_completed(futures):  # one waiter for all (wait() in a loop is O(n^2))
                fut.result()
                on_done(futures[fut])
        except BaseException:
            _abort(pool, self.GRACE_S)
            raise
        pool.shutdown(wait=True)


class _sigint_blocked:
    """Block SIGINT in this thread (a Ctrl-C stays pending and is raised on exit, not lost)."""

    def __enter__(self) -> None:
        self.old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})

    def __exit__(self, *exc) -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, self.old)


def _abort(pool: ProcessPoolExecutor, grace_s: float) -> None:
    """Cancel what has not started, stop the workers (terminate, then kill after ``grace_s``)
    and wait for the pool's manager thread, so nothing outlives the interrupted run."""
    procs = list((getattr(pool, "_processes", None) or {}).values())  # CPython's worker table
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        p.terminate()
    for p in procs:
        p.join(grace_s)
        if p.is_alive():
            p.kill()
            p.join(grace_s)
    manager = getattr(pool, "_executor_manager_thread", None)
    if manager is not None:
        manager.join(grace_s)


class RayExecutor:
    """The same tasks as Ray remote functions on an existing cluster (``address``) or a local
    one. The trace cache and output folder must be on storage every node can reach."""

    def __init__(self, address: str | None = None) -> None:
        try:
            import ray  # noqa: PLC0415
        except ImportError:
            raise MissingComponentError("--executor ray needs Ray: pip install 'ciarsim[ray]'") from None
        self.ray = ray
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)  # fmt: skip

    def map(self, fn: Callable, jobs: Iterable, args: tuple, on_done: Callable) -> None:
        jobs = list(jobs)
        if not jobs:
            return
        remote = self.ray.remote(num_cpus=1)(fn)
        refs = {remote.remote(job, *args): job for job in jobs}
        pending = list(refs)
        while pending:
            ready, pending = self.ray.wait(pending, num_returns=1)
            for ref in ready:
                self.ray.get(ref)
                on_done(refs[ref])
