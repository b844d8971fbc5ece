"""Independent jobs in worker processes: one single-threaded worker pinned to each core.

Where a chapter has independent jobs (class pairs, depths, seeds, the network beside the
kernel), :func:`map_jobs` can run them side by side in worker processes, each pinned to its
own core and single-threaded, instead of one after the other in the calling process with
XLA using every core. Which is faster depends on the job, so the default is the calling
process (``workers=0``) and the worker processes are asked for (``-p workers N``).

Which jobs gain is measured, on a quiet machine (a multi-threaded XLA process slows down
badly when another process competes for its cores): training a small network does not use
a second thread, so such jobs gain from one worker per core (:func:`training_workers`, with
the figures); kernels do use it, and kernel-bound jobs are faster in the calling process.

Every job in a worker runs on one thread, whatever the number of workers, so its numbers do
not depend on how many ran at once (a network's training is sensitive to the last bit of
its updates); they can differ in the last bits from the same job run in the calling process.

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

__all__ = ["SINGLE_THREAD_FLAGS", "cores", "describe", "map_jobs", "training_workers"]

SINGLE_THREAD_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
"""``XLA_FLAGS`` each worker adds: XLA:CPU computes on one thread."""


def cores() -> list:
    """The CPU cores this process may run on."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return list(range(os.cpu_count() or 1))


def training_workers(backend: str | None = None) -> int:
    """The number of workers for jobs whose cost is training a small network on the CPU: one
    per core when JAX computes on the CPU and there are at least two cores, else ``0`` (this
    process: on an accelerator the jobs share one device, which the process already feeds).

    Why (2-core reference CPU, 2026-12-04): an epoch of ``paper_cnn(1)`` on 912 CIFAR-10
    images with flip+shift took 0.6-0.8 s on both cores and 0.6-0.8 s on one, so a second
    thread buys nothing, while a second single-threaded worker doubles the epochs per second;
    the generalisation chapter's ten class pairs (CNTK, LANTK-HR and a CNN each) took 471 s in
    two workers against about 670 s one after the other. Kernels do use the second thread
    (a 600x600 CNTK: 97k entries/s on both cores, 57k on one), so kernel-bound jobs keep
    ``workers=0``.

    Args:
        backend: JAX's backend name (default: ``jax.default_backend()``).
    """
    if backend is None:
        import jax

        backend = jax.default_backend()
    n = len(cores())
    return n if backend == "cpu" and n >= 2 else 0


def describe(workers: int, n_jobs: int) -> str:
    """How :func:`map_jobs` runs ``n_jobs`` jobs with ``workers``, in words (for a log line)."""
    w = min(workers, n_jobs)
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


def map_jobs(fn, jobs, workers: int = 0, on_result=None, call=None) -> list:
    """``[fn(**job) for job in jobs]``, computed by ``workers`` worker processes.

    Args:
        fn: a module-level function (it is pickled by name), or a list of them, one per job
            (jobs of different kinds in one pool).
        jobs: keyword-argument dicts, one per call.
        workers: worker processes, each single-threaded, pinned to a core of its own when
            there are no more workers than :func:`cores` (never more than there are jobs);
            ``0`` (default): in this process, one job after the other.
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
    fns = list(fn) if isinstance(fn, (list, tuple)) else [fn] * len(jobs)
    if len(fns) != len(jobs):
        raise ValueError(f"fn is a list of {len(fns)} functions for {len(jobs)} jobs: give one "
                         f"per job (or a single function for all)")
    workers = check_int(workers, "workers", minimum=0)
    call = _call if call is None else call
    results = [None] * len(jobs)
    if workers == 0 or not jobs:
        for i, job in enumerate(jobs):
            results[i] = call(fns[i], job)
            if on_result is not None:
                on_result(i, results[i])
        return results
    workers = min(workers, len(jobs))
    ctx = mp.get_context("spawn")   # a fresh interpreter: no JAX state forked mid-flight
    free = cores()
    queue = None
    if workers <= len(free):
        queue = ctx.Queue()
        for c in free[:workers]:
            queue.put(c)
    with cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                initargs=(queue, SINGLE_THREAD_FLAGS)) as pool:
        futures = {pool.submit(call, fns[i], job): i for i, job in enumerate(jobs)}
        try:
            for fut in cf.as_completed(futures):
                i = futures[fut]
                try:
                    results[i] = fut.result()
                except BaseException as e:
                    e.add_note(f"(in job {i} of {len(jobs)}: "
                               f"{getattr(fns[i], '__name__', fns[i])}(**{_brief(jobs[i])}))")
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
