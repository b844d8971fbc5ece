"""Executing a chapter: a plan (what to run, where, under which key, whether it is up to
date) followed by its execution with papermill.

:func:`plan_run` reads the chapter and its parameters, checks the given ones, and computes
the run's folder (``runs/<profile>/<chapter>/<run>/``, see :func:`lantk.book.records.run_slug`)
and cache key; it writes nothing and starts no kernel. :func:`execute_plan` then returns the
recorded run when the plan says it is up to date, or else empties the folder, executes the
chapter with papermill (kernel ``python3``, the running interpreter's environment, working
directory the run's folder, JAX's compilation cache under ``runs/``: :data:`COMPILE_CACHE`)
and writes the executed notebook and ``run.json``, last.
:func:`run_chapter` is the two in one call.

Standard library only at import time (papermill, nbformat and jupytext when a chapter runs).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from lantk._io import atomic_write, say as _say, strip_ansi as _strip_ansi
from lantk.book.chapters import (ParameterError, check_parameter_types, check_parameters,
                                 chapter_parameters, find_root, parameter_types, read_chapter,
                                 reads_runs, resolve_chapter, summarises_runs)
from lantk.book.records import (RUN_RECORD, RUNS_DIR, cache_key, data_root_marker,
                                lantk_source_hash, read_record, run_slug, runs_digest, sha256,
                                write_record)
from lantk.profiles import DEFAULT_PROFILE, PROFILES
from lantk.results import RUN_PARAMS_ENV, to_jsonable

__all__ = [
    "KERNEL_NAME",
    "ChapterError",
    "RunPlan",
    "RunResult",
    "execute_plan",
    "plan_run",
    "run_chapter",
]

KERNEL_NAME = "python3"
COMPILE_CACHE = ".jax-cache"
"""JAX's persistent compilation cache of the chapters, ``<root>/runs/.jax-cache`` (unless
``JAX_COMPILATION_CACHE_DIR`` is set): programs a chapter compiled (a network's training
epoch, a kernel's tile) are read back instead of compiled again, within a run and across runs.
It holds compiled code only, never results; ``make clean`` removes it."""
COMPILE_CACHE_BYTES = 2 << 30
"""Size limit of :data:`COMPILE_CACHE` (JAX evicts the least recently used programs)."""
_KERNEL_INFO_TAG = "lantk-kernel-info"


class ChapterError(RuntimeError):
    """A cell of a chapter raised; the message carries the cell's error and traceback."""


@dataclasses.dataclass
class RunResult:
    """What :func:`run_chapter` did: ``status`` is ``"executed"`` or ``"cached"``."""

    chapter: str
    status: str
    notebook: Path
    out_dir: Path
    record: dict


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """What a run of a chapter is: computed by :func:`plan_run`, carried out by
    :func:`execute_plan`.

    Attributes:
        chapter: the chapter's name (its source file's stem).
        source: the chapter's source file.
        root: the book's root.
        profile: the profile the run uses.
        parameters: the parameters that differ from the chapter's defaults, and ``profile``
            (what names the run folder and enters the key).
        all_parameters: every parameter's value in the run (``output_dir`` aside).
        run: the run folder's name (:func:`lantk.book.records.run_slug`).
        out_dir: the run's folder (absolute).
        key: the cache key.
        source_sha256: hash of the chapter's source.
        lantk_sha256: hash of the lantk sources.
        record: the folder's current ``run.json``, or None.
        up_to_date: the folder holds a successful run with this key (and not ``force``).
        nb: the chapter as read (an nbformat notebook), executed as it is.
    """

    chapter: str
    source: Path
    root: Path
    profile: str
    parameters: dict
    all_parameters: dict
    run: str
    out_dir: Path
    key: str
    source_sha256: str
    lantk_sha256: str
    record: dict | None
    up_to_date: bool
    nb: Any = dataclasses.field(repr=False, compare=False, default=None)

    @property
    def notebook(self) -> Path:
        """Where the executed notebook is (or will be)."""
        return self.out_dir / f"{self.chapter}.ipynb"

    @property
    def action(self) -> str:
        """``"cached"`` (nothing to do) or ``"execute"``."""
        return "cached" if self.up_to_date else "execute"


def plan_run(chapter, parameters: dict | None = None, profile: str = DEFAULT_PROFILE, *,
             out_dir=None, root=None, force: bool = False, extra_key: str = "") -> RunPlan:
    """The plan of a run of one chapter: checks the parameters, computes the folder and the
    cache key, and says whether the run is up to date. Reads the chapter, the run folder's
    record and the data root; writes nothing, starts no kernel.

    The arguments are those of :func:`run_chapter`.

    Raises:
        ParameterError: unknown profile or parameter, a value of the wrong type, no
            parameters cell / no ``profile`` or ``output_dir`` in it, or an ``out_dir`` that
            holds something other than a run of this chapter.
        FileNotFoundError: no such chapter.
    """
    if profile not in PROFILES:
        raise ParameterError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    source = resolve_chapter(str(chapter), root)
    if root is None:
        try:
            root = find_root(source.parent)
        except FileNotFoundError:
            root = source.parent
    root = Path(root).resolve()
    name = source.stem
    nb = read_chapter(source)
    declared = chapter_parameters(nb)
    for required in ("profile", "output_dir"):
        if required not in declared:
            raise ParameterError(f"{name}: the parameters cell must assign {required!r} "
                                 f"(it assigns: {', '.join(declared) or 'nothing'})")
    given = dict(parameters or {})
    check_parameters(given, declared, name)
    check_parameter_types({k: v for k, v in given.items() if k not in ("profile", "output_dir")},
                          parameter_types(nb), name)
    if "output_dir" in given:
        raise ParameterError("output_dir is set by the runner: use --out DIR instead")
    if "profile" in given and given["profile"] != profile:
        raise ParameterError(f"-p profile {given['profile']!r} contradicts --profile {profile!r}")
    given["profile"] = profile
    # a value equal to the chapter's default changes nothing: same key, same notebook
    given = {k: v for k, v in given.items() if k == "profile" or declared[k] != v}
    all_params = {k: v for k, v in {**declared, **given}.items() if k != "output_dir"}

    slug = run_slug(given)
    out_dir = (Path(out_dir) if out_dir is not None
               else root / RUNS_DIR / profile / name / slug).resolve()

    source_sha, lantk_sha = sha256(source.read_bytes()), lantk_source_hash()
    if summarises_runs(nb):
        extra_key = extra_key + runs_digest(root / RUNS_DIR / profile, exclude=name)
    reads = reads_runs(nb)
    if reads:  # a chapter that reads other chapters' results reruns when they rerun
        extra_key = extra_key + runs_digest(root / RUNS_DIR / profile, exclude=name, only=reads)
    # chapters choose their dataset by what the data root holds, and read its files: a run
    # made with other data files must not stand in for this one
    extra_key = extra_key + "|data root: " + data_root_marker()
    key = cache_key(source_sha, given, profile, lantk_sha, extra_key)

    record = read_record(out_dir)
    up_to_date = bool(not force and record and record.get("key") == key
                      and record.get("status") == "ok" and (out_dir / f"{name}.ipynb").is_file())
    if not up_to_date:
        _check_run_folder(out_dir, name)
    return RunPlan(chapter=name, source=source, root=root, profile=profile, parameters=given,
                   all_parameters=all_params, run=slug, out_dir=out_dir, key=key,
                   source_sha256=source_sha, lantk_sha256=lantk_sha, record=record,
                   up_to_date=up_to_date, nb=nb)


def execute_plan(plan: RunPlan, *, progress: bool = True, quiet: bool = False,
                 log_output: bool = False) -> RunResult:
    """Carry out a :class:`RunPlan`: the recorded run when it is up to date, else execute.

    The folder is emptied before the run; ``run.json`` is written last, with ``status``
    ``"ok"`` or ``"failed"``, so a failed or interrupted run never looks complete.

    Raises:
        ChapterError: a cell raised (the message has the cell's error and traceback).
    """
    name, root, out_dir, notebook = plan.chapter, plan.root, plan.out_dir, plan.notebook
    if plan.up_to_date:
        record = plan.record
        _say(f"lantk: {name} ({plan.profile}) is up to date in {_rel(out_dir, root)} "
             f"(ran {record.get('started', '?')}, {record.get('wall_time_s', 0):.1f} s)", quiet)
        return RunResult(name, "cached", notebook, out_dir, record)

    _clear_run_folder(out_dir, name)
    out_dir.mkdir(parents=True, exist_ok=True)
    # per-run bookkeeping file: two runs never share it
    info_path = out_dir / f".kernel-info-{os.getpid()}-{time.monotonic_ns()}.json"

    import nbformat

    nb = copy.deepcopy(plan.nb) if plan.nb is not None else read_chapter(plan.source)
    nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata.setdefault("language_info", {"name": "python"})
    info_cell = nbformat.v4.new_code_cell(
        source=f"import lantk.results as _lantk_results\n"
               f"_lantk_results.write_kernel_info({str(info_path)!r})",
        metadata={"tags": [_KERNEL_INFO_TAG, "remove-cell"]})
    nb.cells.append(info_cell)
    run_params = dict(plan.parameters, output_dir=str(out_dir))

    _say(f"lantk: executing {_rel(plan.source, root)} (profile {plan.profile}) -> "
         f"{_rel(out_dir, root)}/", quiet)
    started = _dt.datetime.now(_dt.UTC)
    t0 = time.perf_counter()
    record = {
        "chapter": name,
        "source": _rel(plan.source, root),
        "profile": plan.profile,
        "run": plan.run,
        "parameters": to_jsonable(plan.parameters),
        "all_parameters": to_jsonable(plan.all_parameters),
        "key": plan.key,
        "source_sha256": plan.source_sha256,
        "lantk_sha256": plan.lantk_sha256,
        "started": started.isoformat(timespec="seconds"),
        "notebook": notebook.name,
        "kernel": KERNEL_NAME,
    }
    try:
        executed = _papermill(nb, notebook, run_params, out_dir, progress and not quiet, name,
                              plan.all_parameters, log_output,
                              compile_cache=root / RUNS_DIR / COMPILE_CACHE)
    except ChapterError as e:
        record.update(status="failed", error=str(e).splitlines()[0],
                      wall_time_s=round(time.perf_counter() - t0, 3))
        info_path.unlink(missing_ok=True)
        write_record(out_dir, record)
        raise
    wall = time.perf_counter() - t0
    finished = _dt.datetime.now(_dt.UTC)

    executed.cells = [c for c in executed.cells
                      if _KERNEL_INFO_TAG not in c.get("metadata", {}).get("tags", [])]
    atomic_write(notebook, nbformat.writes(executed))
    try:
        kernel = json.loads(info_path.read_text())
        info_path.unlink()
    except (FileNotFoundError, json.JSONDecodeError):
        kernel = {}

    import papermill

    from lantk import __version__

    record.update({
        "lantk_version": kernel.get("lantk_version") or __version__,
        "status": "ok",
        "finished": finished.isoformat(timespec="seconds"),
        "wall_time_s": round(wall, 3),
        "device": kernel.get("describe", "unknown"),
        "device_info": kernel,
        "versions": kernel.get("versions", {}),
        "papermill_version": papermill.__version__,
        # what this run wrote (the folder was emptied before it)
        "files": sorted(p.name for p in out_dir.iterdir()
                        if p.is_file() and not p.name.startswith(".") and p.name != RUN_RECORD),
    })
    write_record(out_dir, record)
    _say(f"lantk: {name} done in {wall:.1f} s on {record['device']}; notebook "
         f"{_rel(notebook, root)}", quiet)
    return RunResult(name, "executed", notebook, out_dir, record)


def run_chapter(chapter, parameters: dict | None = None, profile: str = DEFAULT_PROFILE, *,
                out_dir=None, root=None, force: bool = False, progress: bool = True,
                quiet: bool = False, extra_key: str = "", log_output: bool = False) -> RunResult:
    """Execute one chapter (unless its cache key is unchanged) and return what happened:
    :func:`execute_plan` of :func:`plan_run`.

    Each set of parameters has its own folder, ``runs/<profile>/<chapter>/<slug>/``:
    ``default`` for the chapter's defaults (what the book shows), else the parameters that
    differ from them and a short hash (:func:`lantk.book.records.run_slug`), so a sweep keeps
    every run and the same parameters again are a cache hit. The folder is emptied before the
    run; ``run.json`` is written last, with ``status`` ``"ok"`` or ``"failed"``, so a failed
    or interrupted run never looks complete.

    Args:
        chapter: a chapter name (``"intro"``) or its source path.
        parameters: overrides for the chapter's parameters cell; unknown names are refused.
        profile: one of :data:`lantk.profiles.PROFILES`; passed to the chapter as ``profile``.
        out_dir: where to write (default ``<root>/runs/<profile>/<chapter>/<slug>``).
        root: the book's root (default: found from the chapter's path / current folder).
        force: execute even when the cache key matches.
        progress: papermill's progress bar.
        quiet: no messages on stderr.
        extra_key: more text for the cache key.
        log_output: stream the cells' output to the terminal (papermill's ``log_output``).

    Raises:
        ParameterError: unknown parameter, a value of the wrong type, or no parameters cell /
            no ``profile`` or ``output_dir`` in it.
        ChapterError: a cell raised (the message has the cell's error and traceback).
    """
    plan = plan_run(chapter, parameters, profile, out_dir=out_dir, root=root, force=force,
                    extra_key=extra_key)
    return execute_plan(plan, progress=progress, quiet=quiet, log_output=log_output)


# --------------------------------------------------------------------------- helpers
def _check_run_folder(out_dir: Path, name: str) -> None:
    """Refuse a non-empty folder that holds no run of this chapter (it would be emptied)."""
    if not out_dir.is_dir():
        return
    if not any(out_dir.iterdir()):
        return
    if not ((out_dir / RUN_RECORD).exists() or (out_dir / f"{name}.ipynb").exists()):
        raise ParameterError(f"{out_dir} holds files that are not a run of {name}: choose an "
                             f"empty folder or one an earlier run of {name} wrote")


def _clear_run_folder(out_dir: Path, name: str) -> None:
    """Empty ``out_dir`` before a run: an earlier run's files must not sit next to a new,
    possibly partial one. Only a folder that holds a run of this chapter (or nothing) is
    cleared; any other non-empty folder is refused."""
    if not out_dir.exists():
        return
    _check_run_folder(out_dir, name)
    for p in list(out_dir.iterdir()):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


def _rel(path: Path, root: Path | None) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path(root).resolve())) if root else str(path)
    except ValueError:
        return str(path)


def _compile_cache_env(folder: Path | None) -> dict:
    """The environment that turns on JAX's persistent compilation cache in ``folder`` (keyed by
    the compiled program, JAX's version and the XLA flags): a chapter compiles the same
    programs again and again (a network trained per class pair, in one process or in
    workers), and compiling a small program costs more than running it. With a size limit JAX
    locks the cache's files (``filelock``), so worker processes can share it; without
    ``filelock`` no cache (``{}``)."""
    if folder is None:
        return {}
    try:
        import filelock  # noqa: F401 -- JAX needs it for a cache with a size limit
    except ImportError:
        return {}
    return {"JAX_COMPILATION_CACHE_DIR": str(folder),
            "JAX_COMPILATION_CACHE_MAX_SIZE": str(COMPILE_CACHE_BYTES),
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
            "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}


def _papermill(nb, notebook: Path, params: dict, cwd: Path, progress: bool, name: str,
               all_params: dict | None = None, log_output: bool = False,
               compile_cache: Path | None = None):
    """Execute ``nb`` with papermill into ``notebook``; a failing cell is a ChapterError."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    # The kernel inherits this process's environment. Its figures use the inline backend,
    # not an MPLBACKEND set for scripts; and JAX must not grab 75% of a GPU up front, which
    # would starve a second process on the same GPU (a test session, nbval, another run).
    # lantk's progress bars inside cells would end up as stderr text in the rendered book;
    # papermill's bar over the cells reports progress instead.
    cache_env = _compile_cache_env(compile_cache)
    saved = {k: os.environ.get(k) for k in ("MPLBACKEND", "XLA_PYTHON_CLIENT_PREALLOCATE",
                                            "TQDM_DISABLE", "LANTK_RUN_DIR",
                                            RUN_PARAMS_ENV, *cache_env)}
    if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
        for k, v in cache_env.items():
            os.environ.setdefault(k, v)
    os.environ.pop("MPLBACKEND", None)
    os.environ["LANTK_RUN_DIR"] = str(cwd)  # lantk.claims records into this run's folder
    os.environ[RUN_PARAMS_ENV] = json.dumps(to_jsonable(all_params or {}))  # CSV columns
    os.environ["TQDM_DISABLE"] = "1"
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    try:
        return pm.execute_notebook(
            nb, str(notebook), parameters=params, kernel_name=KERNEL_NAME, language="python",
            progress_bar=progress, cwd=str(cwd), log_output=log_output,
            # the kernel's own log (its TCP notice, the KeyboardInterrupt it logs when shut
            # down) is noise here; cell errors reach us through the notebook
            extra_arguments=["--IPKernelApp.log_level=CRITICAL"])
    except PapermillExecutionError as e:
        tb = _strip_ansi("\n".join(e.traceback or []))
        src = (e.source or "").strip()
        if e.ename == "ClaimFailed":
            raise ChapterError(f"{name}: a claim of the chapter is false: {e.evalue}\n"
                               f"--- cell source ---\n{src}\n(the partly executed notebook is "
                               f"{notebook})") from None
        raise ChapterError(
            f"{name}: cell In [{e.exec_count}] failed with "
            f"{e.ename}: {e.evalue}\n--- cell source ---\n{src}\n--- traceback ---\n{tb}\n"
            f"(the partly executed notebook is {notebook})") from None
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
