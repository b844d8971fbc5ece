"""Run records and cache keys: what identifies a run and what it left behind.

A run of a chapter lives in ``runs/<profile>/<chapter>/<run>/``, where ``<run>`` is
:func:`run_slug` of the parameters that differ from the chapter's defaults (``default`` for
none), and is described by its ``run.json`` (:func:`read_record`): parameters, cache key,
status, wall time, device, versions, date. The cache key (:func:`cache_key`) hashes the
chapter's source, its parameters and profile, the sources of the ``lantk`` package
(:func:`lantk_source_hash`) and the content identity of the data files
(:func:`data_root_marker`); a summary chapter's key also covers the records of the chapters
it summarises (:func:`runs_digest`).

Standard library only at import time.

Example:
    >>> run_slug({"profile": "smoke"}), run_slug({"seed": 2, "c": 0.1})
    ('default', 'c=0.1-seed=2-a4462e')
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from lantk._io import atomic_write
from lantk.results import to_jsonable

__all__ = [
    "CACHE_VERSION",
    "DEFAULT_RUN",
    "RUNS_DIR",
    "RUN_RECORD",
    "cache_key",
    "data_root_marker",
    "lantk_source_hash",
    "read_record",
    "run_slug",
    "runs_digest",
    "write_record",
]

RUNS_DIR = "runs"
RUN_RECORD = "run.json"
DEFAULT_RUN = "default"  # runs/<profile>/<chapter>/default: the run with the chapter's defaults
CACHE_VERSION = 1  # bump when the layout of runs/ or the key's ingredients change


def lantk_source_hash() -> str:
    """SHA-256 over the ``lantk`` package's source files (relative path and content)."""
    pkg = Path(__file__).resolve().parents[1]  # lantk/ (this file is lantk/book/records.py)
    h = hashlib.sha256()
    for p in sorted(pkg.rglob("*")):
        if not p.is_file() or "__pycache__" in p.parts or p.suffix in (".pyc", ".pyo"):
            continue
        h.update(p.relative_to(pkg).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def sha256(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def data_root_marker() -> str:
    """The data root a chapter would read and the identity (relative path, size, mtime) of
    every file under it."""
    from lantk import data

    root = data.data_root(None)
    if not root.is_dir():
        return f"{root} (none)"
    h = hashlib.sha256(str(root).encode())
    for p in sorted(root.rglob("*")):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return f"{root} {h.hexdigest()}"


def cache_key(source_sha: str, parameters: dict, profile: str, lantk_sha: str,
              extra: str = "") -> str:
    """The key of a run: it changes whenever anything that can change the run's results does."""
    blob = json.dumps({"v": CACHE_VERSION, "source": source_sha, "profile": profile,
                       "parameters": to_jsonable(parameters), "lantk": lantk_sha,
                       "extra": extra}, sort_keys=True)
    return sha256(blob.encode())


def read_record(out_dir) -> dict | None:
    """The ``run.json`` of a run folder, or None where there is none (or it is not JSON)."""
    p = Path(out_dir) / RUN_RECORD
    try:
        return json.loads(p.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def write_record(out_dir, record: dict) -> Path:
    """Write ``run.json`` into a run folder (atomically)."""
    return atomic_write(Path(out_dir) / RUN_RECORD, json.dumps(record, indent=2) + "\n")


def run_slug(given: dict) -> str:
    """The folder name of a run: ``default`` for the chapter's own parameters, else the
    parameters that differ (readable) and a short hash of them (``seed=2-c=0.1-3fa9c2``)."""
    diff = {k: v for k, v in sorted(given.items()) if k != "profile"}
    if not diff:
        return DEFAULT_RUN
    digest = sha256(json.dumps(to_jsonable(diff), sort_keys=True).encode())[:6]
    readable = "-".join(f"{k}={json.dumps(to_jsonable(v), separators=(',', ':'))}"
                        for k, v in diff.items())
    readable = re.sub(r"[^A-Za-z0-9_.,=+-]+", "_", readable).strip("_")[:80]
    return f"{readable}-{digest}"


def runs_digest(runs_dir: Path, exclude: str, only=None) -> str:
    """Hash of the other chapters' run records: a summary chapter depends on them (or only
    on the chapters named in ``only``)."""
    h = hashlib.sha256()
    for rec in sorted(Path(runs_dir).glob(f"*/{DEFAULT_RUN}/{RUN_RECORD}")):
        if rec.parent.parent.name == exclude:
            continue
        if only is not None and rec.parent.parent.name not in only:
            continue
        data = read_record(rec.parent) or {}
        h.update(rec.parent.parent.name.encode() + b"\0" + str(data.get("key")).encode() + b"\0"
                 + str(data.get("finished")).encode() + b"\n")
    return h.hexdigest()
