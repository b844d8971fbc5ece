"""What chapters save and what researchers read back: results files and runs as a table.

Chapters save with :func:`save_results` (JSON), :func:`save_table` (CSV, with the run's
parameters as columns) and :func:`save_figure`; ``lantk run`` keeps one folder per set of
parameters (``runs/<profile>/<chapter>/<run>/``, with its ``run.json``). :func:`load_runs`
gathers every run of a chapter into one DataFrame, so comparing a sweep is one line:

    lantk run lantk_hr -p seed 0 1 2
    >>> from lantk.results import load_runs            # doctest: +SKIP
    >>> load_runs("lantk_hr").groupby("seed")[...]      # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path

from lantk.runner import (DEFAULT_RUN, PROFILES, RUN_RECORD, RUNS_DIR, find_root, load_results,
                          read_record, save_figure, save_results, save_table)

__all__ = ["load_runs", "load_results", "save_figure", "save_results", "save_table"]


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
