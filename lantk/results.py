"""What chapters save and what researchers read back: results files and runs as a table.

Chapters save into their ``output_dir`` with :func:`save_results` (alias :func:`save_json`:
JSON with the run's metadata), :func:`save_table` (CSV, with the run's parameters as
columns) and :func:`save_figure`; every file is written atomically with the user's umask.
``lantk run`` keeps one folder per set of parameters (``runs/<profile>/<chapter>/<run>/``,
with its ``run.json``); :func:`load_runs` gathers every run of a chapter into one DataFrame,
so comparing a sweep is one line:

    lantk run lantk_hr -p seed 0 1 2
    >>> from lantk.results import load_runs            # doctest: +SKIP
    >>> load_runs("lantk_hr").groupby("seed")[...]      # doctest: +SKIP

This module imports only the standard library at the top (JAX for :func:`device_info`,
pandas for :func:`load_runs`, Matplotlib's figure for :func:`save_figure` when called).

Example (inside a chapter):
    >>> import tempfile
    >>> from lantk import results
    >>> out = tempfile.mkdtemp()
    >>> results.save_results("demo", {"accuracy": 0.5}, out, device=False)
    >>> results.load_results("demo", out)["results"]
    {'accuracy': 0.5}
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as _dt
import io
import json
import math
import os
import platform
import time
from pathlib import Path

from lantk._io import atomic_write

__all__ = [
    "device_info",
    "load_results",
    "load_runs",
    "save_figure",
    "save_json",
    "save_results",
    "save_table",
    "to_jsonable",
    "versions",
]

RUN_PARAMS_ENV = "LANTK_RUN_PARAMETERS"  # the run's parameters (JSON), set by lantk run
_IMPORT_TIME = time.time()


def to_jsonable(obj):
    """JSON-friendly copy: NumPy/JAX arrays and scalars, tuples, paths, dataclasses, sets."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None  # JSON has no NaN / inf: null
    if isinstance(obj, Path):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if hasattr(obj, "tolist"):  # numpy / jax arrays and scalars
        return to_jsonable(obj.tolist())
    if hasattr(obj, "item"):
        return to_jsonable(obj.item())
    return str(obj)


def device_info() -> dict:
    """The JAX device computations run on: platform, kind, count and versions.

    ``describe`` is the short form used in the execution table: ``"CPU"`` or
    ``"GPU: NVIDIA H100 80GB HBM3"``.
    """
    import jax

    d = jax.devices()[0]
    kind = str(getattr(d, "device_kind", d.platform))
    platform_name = str(d.platform)
    if platform_name == "cpu":
        describe = "CPU"
    else:
        describe = f"{platform_name.upper()}: {kind}"
        if jax.device_count() > 1:
            describe += f" (x{jax.device_count()})"
    return {
        "platform": platform_name,
        "device_kind": kind,
        "device_count": jax.device_count(),
        "describe": describe,
        "jax_version": jax.__version__,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
    }


def versions() -> dict:
    """Versions of what produced a run: Python, JAX and jaxlib (and the CUDA JAX was built
    for, when a GPU is used), NumPy, SciPy, scikit-learn, lantk and the hash of its sources."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for dist in ("jax", "jaxlib", "numpy", "scipy", "scikit-learn", "optax", "papermill"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = None
    for dist in ("jax-cuda12-plugin", "jax-cuda13-plugin"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    try:
        import jax

        if jax.devices()[0].platform == "gpu":
            from jax._src.lib import cuda_versions  # absent on CPU-only builds
            out["cuda"] = str(cuda_versions.cuda_runtime_get_version()) if cuda_versions else None
    except Exception:  # noqa: BLE001 - a version probe must never fail a run
        pass
    out["lantk"] = _lantk_version()
    from lantk.book.records import lantk_source_hash

    out["lantk_source_sha256"] = lantk_source_hash()
    return out


def _process_start_time() -> float:
    """When this (kernel) process started, from /proc where available."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        start_ticks = int(fields[19])
        with open("/proc/stat") as f:
            btime = next(int(line.split()[1]) for line in f if line.startswith("btime"))
        return btime + start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration, AttributeError):
        return _IMPORT_TIME


def _lantk_version() -> str:
    from lantk import __version__

    return __version__


def _results_path(name: str, output_dir, suffix: str) -> Path:
    name = str(name)
    name = name.removesuffix(suffix)
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"a result name must be a plain file name, got {name!r}")
    return Path(output_dir) / f"{name}{suffix}"


def save_results(name: str, obj, output_dir=".", *, config: dict | None = None,
                 wall_time_s: float | None = None, device: bool = True) -> None:
    """Write ``<output_dir>/<name>.json`` atomically.

    Returns None, so a cell that ends with this call displays nothing; the file is
    ``Path(output_dir) / f"{name}.json"`` (read it back with :func:`load_results`).

    The file holds ``results`` (``obj``, with arrays turned into lists), ``config`` (the
    parameters you pass), the lantk version, the wall time (by default: seconds since the
    kernel started), the device (``device_info()``, unless ``device=False``) and the date.

    Args:
        name: file name without ``.json``.
        obj: anything JSON can hold once NumPy/JAX arrays are lists.
        output_dir: the chapter's ``output_dir`` parameter.
        config: the settings that produced the results.
        wall_time_s: seconds the computation took; default: since the process started.
        device: record the JAX device (imports jax).
    """
    path = _results_path(name, output_dir, ".json")
    record = {
        "name": path.stem,
        "results": to_jsonable(obj),
        "config": to_jsonable(config or {}),
        "lantk_version": _lantk_version(),
        "wall_time_s": round(float(wall_time_s if wall_time_s is not None
                                   else time.time() - _process_start_time()), 3),
        "device": device_info() if device else None,
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    data = json.dumps(record, indent=2, sort_keys=False, allow_nan=False) + "\n"
    atomic_write(path, data)


save_json = save_results  # the name the API uses; the same function


def load_results(name: str, output_dir=".") -> dict:
    """Read back what :func:`save_results` wrote (the whole record)."""
    return json.loads(_results_path(name, output_dir, ".json").read_text())


def save_table(name: str, columns, rows=None, output_dir=".") -> None:
    """Write ``<output_dir>/<name>.csv`` atomically (returns None, like :func:`save_results`).

    Accepted forms: ``save_table(name, ["a", "b"], [(1, 2), (3, 4)], output_dir)``;
    ``save_table(name, [{"a": 1, "b": 2}, ...], output_dir=output_dir)`` (rows as dicts);
    ``save_table(name, {"a": [1, 3], "b": [2, 4]}, output_dir=output_dir)`` (columns); or a
    pandas DataFrame as ``columns``.
    """
    if hasattr(columns, "to_csv") and rows is None:  # pandas DataFrame
        header, body = list(columns.columns), columns.itertuples(index=False)
    elif isinstance(columns, dict) and rows is None:
        header = list(columns)
        body = zip(*(list(to_jsonable(v)) for v in columns.values()))
    elif rows is None:
        body = list(columns)
        header = list(body[0].keys()) if body else []
        body = [[r[h] for h in header] for r in body]
    else:
        header = list(columns)
        body = [[r[h] for h in header] if isinstance(r, dict) else list(r) for r in rows]
    header = list(header)
    extra = {k: v for k, v in _run_parameters().items() if k not in header}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header + list(extra))
    tail = [v if isinstance(v, (int, float, str)) or v is None else json.dumps(v)
            for v in to_jsonable(list(extra.values()))]
    for r in body:
        r = list(to_jsonable(list(r)))
        if len(r) != len(header):
            raise ValueError(f"row {r} has {len(r)} values for {len(header)} columns {header}")
        w.writerow(r + tail)
    atomic_write(_results_path(name, output_dir, ".csv"), buf.getvalue())


def _run_parameters() -> dict:
    """The parameters of the run this kernel executes (set by :func:`lantk.book.execute.run_chapter`), else {}."""
    try:
        return dict(json.loads(os.environ.get(RUN_PARAMS_ENV) or "{}"))
    except (json.JSONDecodeError, TypeError, ValueError):
        return {}


def save_figure(fig, name: str, output_dir=".", formats=("png",), dpi: int = 150) -> None:
    """Save a Matplotlib figure as ``<output_dir>/<name>.<fmt>`` (atomically) for each format.

    The figure stays open, so the cell still displays it (and its ``mystnb`` caption);
    returns None, so nothing else is displayed.
    """
    for fmt in formats:
        path = _results_path(name, output_dir, f".{fmt}")
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=dpi, bbox_inches="tight")
        atomic_write(path, buf.getvalue())


def write_kernel_info(path) -> None:
    """Called by the cell ``lantk run`` appends to every chapter (and removes afterwards):
    the kernel's device, versions and start time, for the run record."""
    info = device_info()
    info["lantk_version"] = _lantk_version()
    info["versions"] = versions()
    info["kernel_started"] = _process_start_time()
    atomic_write(Path(path), json.dumps(info, indent=2) + "\n")


# --------------------------------------------------------------------------- runs as a table
def _scalars(prefix: str, obj, out: dict, depth: int = 0) -> None:
    if isinstance(obj, bool) or isinstance(obj, (int, float, str)) or obj is None:
        out[prefix] = obj
    elif isinstance(obj, dict) and depth < 3:
        for k, v in obj.items():
            _scalars(f"{prefix}.{k}", v, out, depth + 1)


def load_runs(chapter: str | None = None, profile: str | None = None, *, root=None,
              results: bool = True):
    """Every recorded run as a pandas DataFrame, one row per run.

    Columns: ``chapter``, ``profile``, ``run`` (the folder), ``status``, ``wall_time_s``,
    ``device``, ``started``, ``path``; one column per chapter parameter (its value in that
    run, defaults included); and, with ``results=True``, one column per scalar of each
    results file the run saved (``<file>.<key>``, nested keys joined with dots).

    Args:
        chapter: only this chapter's runs (default: all).
        profile: only this profile (``"smoke"``, ``"default"`` or ``"paper"``; default: all).
        root: the book's root (default: found from the current folder).
        results: read the scalar results too.
    """
    import pandas as pd

    from lantk.book.chapters import find_root
    from lantk.book.records import DEFAULT_RUN, RUN_RECORD, RUNS_DIR, read_record
    from lantk.profiles import PROFILES

    if profile is not None and profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    runs = find_root(root) / RUNS_DIR
    rows = []
    for prof in [profile] if profile else PROFILES:
        base = runs / prof
        pattern = f"{chapter}/*/{RUN_RECORD}" if chapter else f"*/*/{RUN_RECORD}"
        for rec_path in sorted(base.glob(pattern)):
            rec = read_record(rec_path.parent)
            if not rec:
                continue
            row = {"chapter": rec.get("chapter", rec_path.parent.parent.name), "profile": prof,
                   "run": rec_path.parent.name, "status": rec.get("status"),
                   "wall_time_s": rec.get("wall_time_s"), "device": rec.get("device"),
                   "started": rec.get("started"), "path": str(rec_path.parent),
                   "default": rec_path.parent.name == DEFAULT_RUN}
            params = rec.get("all_parameters") or rec.get("parameters") or {}
            for k, v in params.items():
                row[k] = json.dumps(v) if isinstance(v, (list, dict)) else v
            if results:
                for f in sorted(rec_path.parent.glob("*.json")):
                    if f.name in (RUN_RECORD, "claims.json"):
                        continue
                    try:
                        data = load_results(f.name, rec_path.parent)
                    except (json.JSONDecodeError, OSError):
                        continue
                    if isinstance(data, dict) and "results" in data:
                        _scalars(f.stem, data["results"], row)
            rows.append(row)
    return pd.DataFrame(rows)
