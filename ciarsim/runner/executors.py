"""Executors run the runner's tasks: in this process, in a local process pool, or on Ray.

An executor has one method, ``map(fn, jobs, args, on_done)``: call ``fn(job, *args)`` for every
job, calling ``on_done(job)`` as each finishes. Tasks communicate only through files (the trace
cache and the part files, all written atomically), so the executor never changes a result: the
runner gathers the parts in the plan's order afterwards.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Callable, Iterable, Protocol

from ciarsim.errors import CiarsimError


class Executor(Protocol):
    def map(self, fn: Callable, jobs: list, args: tuple, on_done: Callable) -> None: ...


class LocalExecutor:
    """Run tasks one after another in this process."""

    def map(self, fn: Callable, jobs: list, args: tuple, on_done: Callable) -> None:
        for job in jobs:
            fn(job, *args)
            on_done(job)


def _init_worker(threads: int) -> None:
    try:
        import torch  # noqa: PLC0415

        torch.set_num_threads(threads)
    except ImportError:  # pragma: no cover - torch is a core dependency
        pass


class PoolExecutor:
    """A local process pool (spawned workers; torch threads split between them).

    Two workers never decode the same trace set: the runner deduplicates decode tasks by key.
    On Ctrl-C or an error the pending tasks are cancelled; finished parts stay on disk.
    """

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)

    def map(self, fn: Callable, jobs: list, args: tuple, on_done: Callable) -> None:
        if len(jobs) <= 1 or self.workers == 1:
            return LocalExecutor().map(fn, jobs, args, on_done)
        threads = max(1, (os.cpu_count() or 1) // self.workers)
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker,
                                 initargs=(threads,)) as pool:  # fmt: skip
            futures = {pool.submit(fn, job, *args): job for job in jobs}
            try:
                pending = set(futures)
                while pending:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        fut.result()
                        on_done(futures[fut])
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise


class RayExecutor:
    """The same tasks as Ray remote functions on an existing cluster (``address``) or a local
    one. The trace cache and output folder must be on storage every node can reach."""

    def __init__(self, address: str | None = None) -> None:
        try:
            import ray  # noqa: PLC0415
        except ImportError:
            raise CiarsimError(
                "--executor ray needs Ray: pip install 'ciarsim[ray]'"
            ) from None
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
