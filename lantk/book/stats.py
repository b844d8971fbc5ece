"""The execution-statistics page: one row per chapter run, from the run records.

The chapter ``book/execution.md`` shows :func:`execution_table` of the default runs under
:func:`default_runs_dir`. Standard library only at import time.
"""

from __future__ import annotations

from pathlib import Path

from lantk.book.chapters import find_root, toc_chapters
from lantk.book.records import DEFAULT_RUN, RUN_RECORD, RUNS_DIR, read_record
from lantk.profiles import DEFAULT_PROFILE

__all__ = ["default_runs_dir", "execution_rows", "execution_table"]


def execution_rows(runs_dir, exclude=()) -> list[dict]:
    """One row per chapter run recorded under ``runs_dir`` (``runs/<profile>``), in the
    order of ``_toc.yml`` where it can be found, else by name."""
    runs_dir = Path(runs_dir)
    records = [r for r in (read_record(p.parent)
                           for p in sorted(runs_dir.glob(f"*/{DEFAULT_RUN}/{RUN_RECORD}")))
               if r and r.get("status") == "ok" and r.get("chapter") not in set(exclude)]
    order: dict = {}
    try:
        order = {Path(e).name: i for i, e in enumerate(toc_chapters(find_root(runs_dir)))}
    except FileNotFoundError:
        pass
    records.sort(key=lambda r: (order.get(r["chapter"], len(order)), r["chapter"]))
    return [{
        "chapter": r["chapter"],
        "profile": r.get("profile", "?"),
        "wall time (s)": round(float(r.get("wall_time_s", float("nan"))), 1),
        "device": r.get("device", "unknown"),
        "lantk": r.get("lantk_version", "?"),
        "lantk source": str(r.get("lantk_sha256", ""))[:10],
        "date (UTC)": str(r.get("started", "?")).replace("T", " ").replace("+00:00", ""),
    } for r in records]


def default_runs_dir(output_dir=".", profile: str = DEFAULT_PROFILE) -> Path:
    """``runs/<profile>`` for a chapter whose ``output_dir`` is
    ``runs/<profile>/<name>/<run>``; otherwise (``output_dir = "."`` in a plain build) the
    ``runs/<profile>`` of the book."""
    out = Path(output_dir).resolve()
    if (len(out.parents) >= 3 and out.parents[1].name == profile
            and out.parents[2].name == RUNS_DIR):
        return out.parents[1]
    try:
        return find_root(out) / RUNS_DIR / profile
    except FileNotFoundError:
        return out / RUNS_DIR / profile


def execution_table(runs_dir, exclude=()) -> str:
    """The execution statistics as a Markdown table (rendered by MyST-NB when displayed with
    ``IPython.display.Markdown``)."""
    rows = execution_rows(runs_dir, exclude)
    if not rows:
        return "*No chapter runs are recorded yet.*"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(str(r[c]) for c in cols) + " |")
    return "\n".join(lines)
