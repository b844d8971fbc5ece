"""Independent jobs spread over a CPU's cores: one single-threaded worker process per core.

XLA:CPU runs one small convolution network step on two threads no faster than on one: on
the 2-core reference machine a training step of ``paper_cnn(1)`` on 32 images ran at 391
images/s with both cores in one process, and at 429 + 476 = 905 images/s in two processes of
one thread each, pinned to a core each (``benchmarks/bench_parallel.py``). Kernel matrices
gain less (about 1.2x), but lose nothing. So where a chapter has independent jobs (class
pairs, depths, seeds), :func:`map_jobs` runs them in worker processes, each pinned to its own
core and single-threaded.

Every job runs in a worker of one thread, whatever the number of workers, so its numbers do
not depend on how many ran at once (a network's training is sensitive to the last bit of
its updates). ``workers=0`` runs the jobs in the calling process instead (its threads, its
device: what a GPU wants, and the default when JAX's backend is not the CPU).

A job is a module-level function and keyword arguments that pickle (NumPy arrays, numbers,
strings, lists, dicts; not JAX closures such as a ``kernel_fn``: pass the name of an
architecture of :mod:`lantk.archs` instead, see :func:`lantk.archs.build`). Its result comes
back by pickle too, so return NumPy arrays. The workers are started fresh (``spawn``) and
import the calling script's module: in a script, call :func:`map_jobs` under
``if __name__ == "__main__":`` (in a notebook nothing is needed).

Example:
    >>> from lantk import parallel
    >>> parallel.map_jobs(pow, [dict(base=2, exp=3), dict(base=3, exp=2)], workers=2)
    [8, 9]
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os

from lantk._checks import check_int

__all__ = ["SINGLE_THREAD_FLAGS", "default_workers", "describe", "map_jobs"]

SINGLE_THREAD_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
"""``XLA_FLAGS`` each worker adds: XLA:CPU computes on one thread."""


def _cores() -> list:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return list(range(os.cpu_count() or 1))


def default_workers() -> int:
    """One worker per core this process may run on when JAX computes on the CPU; 0 (the
    calling process) on an accelerator."""
    import jax

    return len(_cores()) if jax.default_backend() == "cpu" else 0


def describe(workers: int | None, n_jobs: int) -> str:
    """How :func:`map_jobs` runs ``n_jobs`` jobs with ``workers``, in words (for a log line)."""
    w = default_workers() if workers is None else workers
    w = min(w, n_jobs)
    if w == 0:
        return "this process"
    return f"{w} worker process{'es' if w > 1 else ''} of one thread each"


def _init_worker(cores, flags):
    """Pin this worker to the next free core (when there are no more workers than cores)
    and make XLA:CPU single-threaded, before JAX starts its backend here."""
    if cores is not None:
        os.sched_setaffinity(0, {cores.get()})
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + flags).strip()


def _call(fn, kwargs):
    return fn(**kwargs)


def map_jobs(fn, jobs, workers: int | None = None, on_result=None, call=None) -> list:
    """``[fn(**job) for job in jobs]``, computed by ``workers`` worker processes.

    Args:
        fn: a module-level function (it is pickled by name).
        jobs: keyword-argument dicts, one per call.
        workers: processes (default :func:`default_workers`); ``0``: in this process, one
            job after the other. Never more than there are jobs.
        on_result: ``on_result(i, result)`` is called in this process as job ``i`` finishes
            (in the order they finish): for progress lines.
        call: how a job is called (default ``fn(**job)``); for tests.

    Returns:
        The results in the order of ``jobs``.

    Raises:
        ValueError: ``workers`` not a non-negative integer, or a job that is not a dict.
        The first exception a job raised, re-raised here (with the job's index in a note).
    """
    jobs = list(jobs)
    bad = [i for i, j in enumerate(jobs) if not isinstance(j, dict)]
    if bad:
        raise ValueError(f"jobs must be dicts of keyword arguments; job {bad[0]} is "
                         f"{type(jobs[bad[0]]).__name__}")
    workers = default_workers() if workers is None else check_int(workers, "workers", minimum=0)
    call = _call if call is None else call
    results = [None] * len(jobs)
    if workers == 0 or not jobs:
        for i, job in enumerate(jobs):
            results[i] = call(fn, job)
            if on_result is not None:
                on_result(i, results[i])
        return results
    workers = min(workers, len(jobs))
    ctx = mp.get_context("spawn")   # a fresh interpreter: no JAX state forked mid-flight
    cores = _cores()
    queue = None
    if workers <= len(cores):
        queue = ctx.Queue()
        for c in cores[:workers]:
            queue.put(c)
    with cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                initargs=(queue, SINGLE_THREAD_FLAGS)) as pool:
        futures = {pool.submit(call, fn, job): i for i, job in enumerate(jobs)}
        try:
            for fut in cf.as_completed(futures):
                i = futures[fut]
                try:
                    results[i] = fut.result()
                except BaseException as e:
                    e.add_note(f"(in job {i} of {len(jobs)}: {fn.__name__}(**{_brief(jobs[i])}))")
                    raise
                if on_result is not None:
                    on_result(i, results[i])
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    return results


def _brief(job: dict) -> str:
    parts = []
    for k, v in job.items():
        r = repr(v)
        parts.append(f"{k}={r if len(r) <= 40 else r[:37] + '...'}")
    return "{" + ", ".join(parts) + "}"
