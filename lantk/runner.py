"""Running the book: ``lantk run``, ``lantk book`` and the helpers chapters call.

Chapters are jupytext MyST Markdown notebooks in ``book/``, listed in ``_toc.yml``. Each has
one code cell tagged ``parameters`` whose plain assignments are the chapter's parameters,
among them ``profile`` (``"smoke"``, ``"default"`` or ``"paper"``; see :mod:`lantk.profiles`) and ``output_dir`` (default ``"."``).

``run_chapter`` converts a chapter with jupytext, executes it with papermill (kernel
``python3``, the running interpreter's environment) and writes, under
``runs/<profile>/<chapter>/``:

* ``<chapter>.ipynb`` -- the executed notebook (papermill injects the parameters, among them
  ``output_dir``: the absolute path of that folder, which is also the kernel's working
  directory);
* whatever the chapter saves there with :func:`save_results`, :func:`save_table` and
  :func:`save_figure`;
* ``run.json`` -- the run record: parameters, cache key, wall time, device, versions, date.

A chapter is not executed again while its cache key is unchanged. The key hashes the
chapter's source, its parameters (the profile included) and the source files of the
``lantk`` package, so a change to the package re-executes every chapter -- Jupyter Book's
own cache only sees the notebook's code. Chapters whose front matter sets
``lantk: {summarises_runs: true}`` (the execution-statistics chapter) run after all the
others, and their key also covers the other chapters' run records.

``build_book`` executes every chapter in ``_toc.yml`` that way, stages the executed
notebooks with ``_config.yml`` (execution switched off), ``_toc.yml`` and the other files of
``book/`` in ``_build/<profile>/source``, and renders them with ``jupyter-book build``
(warnings are errors) into ``_build/<profile>/_build/html``.

Example (inside a chapter):
    >>> import tempfile
    >>> from lantk import runner
    >>> out = tempfile.mkdtemp()
    >>> runner.save_results("demo", {"accuracy": 0.5}, out, device=False)
    >>> runner.load_results("demo", out)["results"]
    {'accuracy': 0.5}
"""

from __future__ import annotations

import ast
import csv
import dataclasses
import datetime as _dt
import hashlib
import io
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = [
    "PROFILES",
    "BookError",
    "ChapterError",
    "ParameterError",
    "RunResult",
    "build_book",
    "chapter_parameters",
    "device_info",
    "execution_rows",
    "execution_table",
    "find_root",
    "lantk_source_hash",
    "load_results",
    "parse_value",
    "run_chapter",
    "save_figure",
    "save_results",
    "save_table",
    "toc_chapters",
]

from lantk.profiles import DEFAULT_PROFILE, PROFILE_HELP, PROFILES  # noqa: E402  (stdlib only)
KERNEL_NAME = "python3"
RUN_RECORD = "run.json"
DEFAULT_RUN = "default"  # runs/<profile>/<chapter>/default: the run with the chapter's defaults
RUN_PARAMS_ENV = "LANTK_RUN_PARAMETERS"  # the run's parameters (JSON), for save_table
RUNS_DIR = "runs"
BUILD_DIR = "_build"
BOOK_DIR = "book"
CACHE_VERSION = 1  # bump when the layout of runs/ or the key's ingredients change
_KERNEL_INFO_TAG = "lantk-kernel-info"
_IMPORT_TIME = time.time()


class ParameterError(ValueError):
    """A parameter the chapter does not declare, or a chapter without a parameters cell."""


class ChapterError(RuntimeError):
    """A cell of a chapter raised; the message carries the cell's error and traceback."""


class BookError(RuntimeError):
    """``jupyter-book build`` failed."""


# --------------------------------------------------------------------------- chapter helpers
def _atomic_write_bytes(path: Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a plain open() honours umask
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` atomically (a temporary file renamed into place), with the
    permissions a plain ``open`` would give under the current umask."""
    return _atomic_write_bytes(Path(path), data.encode() if isinstance(data, str) else data)


def _to_jsonable(obj):
    """JSON-friendly copy: NumPy/JAX arrays and scalars, tuples, paths, dataclasses, sets."""
    if isinstance(obj, dict):
        return {str(k): _to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_to_jsonable(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None  # JSON has no NaN / inf: null
    if isinstance(obj, Path):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _to_jsonable(dataclasses.asdict(obj))
    if hasattr(obj, "tolist"):  # numpy / jax arrays and scalars
        return _to_jsonable(obj.tolist())
    if hasattr(obj, "item"):
        return _to_jsonable(obj.item())
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
        "results": _to_jsonable(obj),
        "config": _to_jsonable(config or {}),
        "lantk_version": _lantk_version(),
        "wall_time_s": round(float(wall_time_s if wall_time_s is not None
                                   else time.time() - _process_start_time()), 3),
        "device": device_info() if device else None,
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    data = json.dumps(record, indent=2, sort_keys=False, allow_nan=False) + "\n"
    _atomic_write_bytes(path, data.encode())


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
        body = zip(*(list(_to_jsonable(v)) for v in columns.values()))
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
            for v in _to_jsonable(list(extra.values()))]
    for r in body:
        r = list(_to_jsonable(list(r)))
        if len(r) != len(header):
            raise ValueError(f"row {r} has {len(r)} values for {len(header)} columns {header}")
        w.writerow(r + tail)
    _atomic_write_bytes(_results_path(name, output_dir, ".csv"), buf.getvalue().encode())


def _run_parameters() -> dict:
    """The parameters of the run this kernel executes (set by :func:`run_chapter`), else {}."""
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
        _atomic_write_bytes(path, buf.getvalue())


def _write_kernel_info(path) -> None:
    """Called by the cell the runner appends to every chapter (and removes afterwards)."""
    info = device_info()
    info["lantk_version"] = _lantk_version()
    info["versions"] = versions()
    info["kernel_started"] = _process_start_time()
    _atomic_write_bytes(Path(path), (json.dumps(info, indent=2) + "\n").encode())


# --------------------------------------------------------------------------- book layout
def find_root(start=None) -> Path:
    """The book's root: the nearest folder at or above ``start`` (default: the current
    folder) that holds ``_toc.yml``."""
    here = Path(start or os.getcwd()).resolve()
    for d in (here, *here.parents):
        if (d / "_toc.yml").is_file():
            return d
    raise FileNotFoundError(f"no _toc.yml in {here} or any folder above it: run lantk from the "
                            "book's root (the folder with _toc.yml and book/) or pass --root")


def toc_chapters(root) -> list[str]:
    """The files of ``_toc.yml`` in reading order, as paths relative to the root without
    suffix (``["book/intro", ...]``)."""
    import yaml

    toc = yaml.safe_load((Path(root) / "_toc.yml").read_text()) or {}
    out: list[str] = []

    def walk(entry):
        if isinstance(entry, dict):
            if "file" in entry:
                out.append(str(entry["file"]))
            for key in ("parts", "chapters", "sections"):
                for sub in entry.get(key, []) or []:
                    walk(sub)
        elif isinstance(entry, list):
            for sub in entry:
                walk(sub)

    if "root" in toc:
        out.append(str(toc["root"]))
    walk({k: v for k, v in toc.items() if k in ("parts", "chapters", "sections")})
    return [re.sub(r"\.(md|ipynb)$", "", f) for f in out]


def _chapter_source(entry: str, root: Path) -> Path:
    for suffix in (".md", ".ipynb"):
        p = root / f"{entry}{suffix}"
        if p.is_file():
            return p
    raise FileNotFoundError(f"_toc.yml lists {entry!r} but neither {entry}.md nor "
                            f"{entry}.ipynb exists under {root}")


def resolve_chapter(spec: str, root=None) -> Path:
    """A chapter's source file from a path (``book/intro.md``) or a name (``intro``)."""
    p = Path(spec)
    if p.suffix in (".md", ".ipynb") and p.is_file():
        return p.resolve()
    root = Path(root) if root is not None else find_root()
    for cand in (root / spec, root / f"{spec}.md", root / BOOK_DIR / f"{spec}.md",
                 root / BOOK_DIR / spec):
        if cand.suffix in (".md", ".ipynb") and cand.is_file():
            return cand.resolve()
    try:
        names = [Path(e).name for e in toc_chapters(root)]
    except FileNotFoundError:
        names = []
    raise FileNotFoundError(f"no chapter {spec!r}; chapters in _toc.yml: "
                            f"{', '.join(names) or '(none)'}")


def read_chapter(source):
    """The chapter as an nbformat notebook (jupytext conversion of the MyST Markdown)."""
    import jupytext

    return jupytext.read(str(source))


def is_executable(nb) -> bool:
    """A chapter (a notebook with code cells) rather than a text page such as the
    references, which the book shows as it is."""
    return any(c.cell_type == "code" for c in nb.cells)


def _parameters_cell(nb):
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return cell
    return None


def chapter_parameters(nb_or_source) -> dict:
    """The parameters a chapter declares: ``{name: default}`` from the assignments of its
    ``parameters`` cell, parsed with :mod:`ast`. A default that is not a literal is kept as
    its source text."""
    nb = nb_or_source if hasattr(nb_or_source, "cells") else read_chapter(nb_or_source)
    cell = _parameters_cell(nb)
    if cell is None:
        raise ParameterError("the chapter has no code cell tagged 'parameters'")
    src = cell.source if isinstance(cell.source, str) else "".join(cell.source)
    tree = ast.parse(src)
    params: dict = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        names = []
        for t in targets:
            if isinstance(t, ast.Name):
                names.append(t.id)
            elif isinstance(t, (ast.Tuple, ast.List)):
                names += [e.id for e in t.elts if isinstance(e, ast.Name)]
        try:
            default = ast.literal_eval(value)
        except (ValueError, SyntaxError, TypeError):
            default = ast.get_source_segment(src, value)
        for n in names:
            params[n] = default
    return params


_TYPE_NAMES = {"int": int, "float": float, "str": str, "bool": bool, "list": list,
               "tuple": tuple, "dict": dict, "None": type(None)}


def parameter_types(nb_or_source) -> dict:
    """The declared type of each parameter: its annotation in the parameters cell
    (``n_train: int | None = None``), else the type of its default (``None`` and non-literal
    defaults declare nothing). Returns ``{name: tuple of types}``."""
    nb = nb_or_source if hasattr(nb_or_source, "cells") else read_chapter(nb_or_source)
    defaults = chapter_parameters(nb)
    cell = _parameters_cell(nb)
    src = cell.source if isinstance(cell.source, str) else "".join(cell.source)
    annotated: dict = {}
    literal: set = set()  # names whose default is a literal (non-literals are kept as text)
    for node in ast.parse(src).body:
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, ast.AnnAssign) and node.value is not None else [])
        names = [t.id for t in targets if isinstance(t, ast.Name)]
        try:
            ast.literal_eval(node.value)
            literal.update(names)
        except (ValueError, SyntaxError, TypeError, AttributeError):
            pass
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            parts = [part.strip().split("[")[0]
                     for part in ast.get_source_segment(src, node.annotation).split("|")]
            if all(n in _TYPE_NAMES for n in parts):
                annotated[node.target.id] = tuple(_TYPE_NAMES[n] for n in parts)
    types: dict = {}
    for name, default in defaults.items():
        if name in annotated:
            types[name] = annotated[name]
        elif isinstance(default, bool):
            types[name] = (bool,)
        elif isinstance(default, int):
            types[name] = (int,)
        elif isinstance(default, float):
            types[name] = (float, int)
        elif isinstance(default, str) and name in literal:
            types[name] = (str,)
        elif isinstance(default, (list, tuple)):
            types[name] = (list, tuple)
    return types


def check_parameter_types(given: dict, types: dict, chapter: str = "the chapter") -> None:
    """Refuse a value whose type the chapter does not declare for that parameter (before any
    kernel starts), naming the parameter and the expected type."""
    for name, value in given.items():
        want = types.get(name)
        if not want:
            continue
        ok = isinstance(value, want) and not (isinstance(value, bool) and bool not in want)
        if int in want and float not in want and isinstance(value, float):
            ok = False
        if not ok:
            expected = " or ".join("None" if t is type(None) else t.__name__ for t in want)
            raise ParameterError(f"parameter {name} of {chapter} expects {expected}, got "
                                 f"{value!r} ({type(value).__name__})")


def parse_value(text: str):
    """A ``-p`` value: a Python literal where it parses as one (``3``, ``0.5``, ``None``,
    ``[3, 8]``, ``'cat'``), else the string itself (``cat``)."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def check_parameters(given: dict, declared: dict, chapter: str = "the chapter") -> None:
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise ParameterError(
            f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} for "
            f"{chapter}; valid parameters: {', '.join(declared)}")


# --------------------------------------------------------------------------- cache key
def lantk_source_hash() -> str:
    """SHA-256 over the ``lantk`` package's source files (relative path and content)."""
    pkg = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for p in sorted(pkg.rglob("*")):
        if not p.is_file() or "__pycache__" in p.parts or p.suffix in (".pyc", ".pyo"):
            continue
        h.update(p.relative_to(pkg).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _data_root_marker() -> str:
    """The data root a chapter would read and which dataset folders it holds."""
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
    blob = json.dumps({"v": CACHE_VERSION, "source": source_sha, "profile": profile,
                       "parameters": _to_jsonable(parameters), "lantk": lantk_sha,
                       "extra": extra}, sort_keys=True)
    return _sha256(blob.encode())


def read_record(out_dir) -> dict | None:
    p = Path(out_dir) / RUN_RECORD
    try:
        return json.loads(p.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _summarises_runs(nb) -> bool:
    return bool((nb.metadata.get("lantk") or {}).get("summarises_runs"))


def _reads_runs(nb) -> list:
    """The chapters whose results this chapter reads (front matter ``lantk: {reads_runs:
    [elasticity]}``)."""
    reads = (nb.metadata.get("lantk") or {}).get("reads_runs") or []
    return [str(r) for r in ([reads] if isinstance(reads, str) else reads)]


def _runs_digest(runs_dir: Path, exclude: str, only=None) -> str:
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


# --------------------------------------------------------------------------- execution
@dataclasses.dataclass
class RunResult:
    """What :func:`run_chapter` did: ``status`` is ``"executed"`` or ``"cached"``."""

    chapter: str
    status: str
    notebook: Path
    out_dir: Path
    record: dict


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)


def _say(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def _rel(path: Path, root: Path | None) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path(root).resolve())) if root else str(path)
    except ValueError:
        return str(path)


def run_slug(given: dict) -> str:
    """The folder name of a run: ``default`` for the chapter's own parameters, else the
    parameters that differ (readable) and a short hash of them (``seed=2-c=0.1-3fa9c2``)."""
    diff = {k: v for k, v in sorted(given.items()) if k != "profile"}
    if not diff:
        return DEFAULT_RUN
    digest = _sha256(json.dumps(_to_jsonable(diff), sort_keys=True).encode())[:6]
    readable = "-".join(f"{k}={json.dumps(_to_jsonable(v), separators=(',', ':'))}"
                        for k, v in diff.items())
    readable = re.sub(r"[^A-Za-z0-9_.,=+-]+", "_", readable).strip("_")[:80]
    return f"{readable}-{digest}"


def _clear_run_folder(out_dir: Path, name: str) -> None:
    """Empty ``out_dir`` before a run: an earlier run's files must not sit next to a new,
    possibly partial one. Only a folder that holds a run of this chapter (or nothing) is
    cleared; any other non-empty folder is refused."""
    if not out_dir.exists():
        return
    entries = list(out_dir.iterdir())
    if not entries:
        return
    if not ((out_dir / RUN_RECORD).exists() or (out_dir / f"{name}.ipynb").exists()):
        raise ParameterError(f"{out_dir} holds files that are not a run of {name}: choose an "
                             f"empty folder or one an earlier run of {name} wrote")
    for p in entries:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


def run_chapter(chapter, parameters: dict | None = None, profile: str = DEFAULT_PROFILE, *,
                out_dir=None, root=None, force: bool = False, progress: bool = True,
                quiet: bool = False, extra_key: str = "", log_output: bool = False) -> RunResult:
    """Execute one chapter (unless its cache key is unchanged) and return what happened.

    Each set of parameters has its own folder, ``runs/<profile>/<chapter>/<slug>/``:
    ``default`` for the chapter's defaults (what the book shows), else the parameters that
    differ from them and a short hash (:func:`run_slug`), so a sweep keeps every run and the
    same parameters again are a cache hit. The folder is emptied before the run; ``run.json``
    is written last, with ``status`` ``"ok"`` or ``"failed"``, so a failed or interrupted run
    never looks complete.

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

    slug = run_slug(given)
    out_dir = (Path(out_dir) if out_dir is not None
               else root / RUNS_DIR / profile / name / slug).resolve()
    notebook = out_dir / f"{name}.ipynb"

    source_bytes = source.read_bytes()
    source_sha, lantk_sha = _sha256(source_bytes), lantk_source_hash()
    if _summarises_runs(nb):
        extra_key = extra_key + _runs_digest(root / RUNS_DIR / profile, exclude=name)
    reads = _reads_runs(nb)
    if reads:  # a chapter that reads other chapters' results reruns when they rerun
        extra_key = extra_key + _runs_digest(root / RUNS_DIR / profile, exclude=name,
                                             only=reads)
    # chapters choose their dataset by what the data root holds, and read its files: a run
    # made with other data files must not stand in for this one
    extra_key = extra_key + "|data root: " + _data_root_marker()
    key = cache_key(source_sha, given, profile, lantk_sha, extra_key)

    record = read_record(out_dir)
    if (not force and record and record.get("key") == key and record.get("status") == "ok"
            and notebook.is_file()):
        _say(f"lantk: {name} ({profile}) is up to date in {_rel(out_dir, root)} "
             f"(ran {record.get('started', '?')}, {record.get('wall_time_s', 0):.1f} s)", quiet)
        return RunResult(name, "cached", notebook, out_dir, record)

    _clear_run_folder(out_dir, name)
    out_dir.mkdir(parents=True, exist_ok=True)
    # per-run bookkeeping file: two runs never share it
    info_path = out_dir / f".kernel-info-{os.getpid()}-{time.monotonic_ns()}.json"

    import nbformat

    nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata.setdefault("language_info", {"name": "python"})
    info_cell = nbformat.v4.new_code_cell(
        source=f"import lantk.runner as _lantk_runner\n"
               f"_lantk_runner._write_kernel_info({str(info_path)!r})",
        metadata={"tags": [_KERNEL_INFO_TAG, "remove-cell"]})
    nb.cells.append(info_cell)
    run_params = dict(given, output_dir=str(out_dir))
    all_params = {k: v for k, v in {**declared, **given}.items() if k != "output_dir"}

    _say(f"lantk: executing {_rel(source, root)} (profile {profile}) -> "
         f"{_rel(out_dir, root)}/", quiet)
    started = _dt.datetime.now(_dt.UTC)
    t0 = time.perf_counter()
    record = {
        "chapter": name,
        "source": _rel(source, root),
        "profile": profile,
        "run": slug,
        "parameters": _to_jsonable(given),
        "all_parameters": _to_jsonable(all_params),
        "key": key,
        "source_sha256": source_sha,
        "lantk_sha256": lantk_sha,
        "started": started.isoformat(timespec="seconds"),
        "notebook": notebook.name,
        "kernel": KERNEL_NAME,
    }
    try:
        executed = _execute(nb, notebook, run_params, out_dir, progress and not quiet, name,
                            all_params, log_output)
    except ChapterError as e:
        record.update(status="failed", error=str(e).splitlines()[0],
                      wall_time_s=round(time.perf_counter() - t0, 3))
        info_path.unlink(missing_ok=True)
        _atomic_write_bytes(out_dir / RUN_RECORD, (json.dumps(record, indent=2) + "\n").encode())
        raise
    wall = time.perf_counter() - t0
    finished = _dt.datetime.now(_dt.UTC)

    executed.cells = [c for c in executed.cells
                      if _KERNEL_INFO_TAG not in c.get("metadata", {}).get("tags", [])]
    _atomic_write_bytes(notebook, nbformat.writes(executed).encode())
    try:
        kernel = json.loads(info_path.read_text())
        info_path.unlink()
    except (FileNotFoundError, json.JSONDecodeError):
        kernel = {}

    import papermill

    record.update({
        "lantk_version": kernel.get("lantk_version") or _lantk_version(),
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
    _atomic_write_bytes(out_dir / RUN_RECORD, (json.dumps(record, indent=2) + "\n").encode())
    _say(f"lantk: {name} done in {wall:.1f} s on {record['device']}; notebook "
         f"{_rel(notebook, root)}", quiet)
    return RunResult(name, "executed", notebook, out_dir, record)


def _execute(nb, notebook: Path, params: dict, cwd: Path, progress: bool, name: str,
             all_params: dict | None = None, log_output: bool = False):
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    # The kernel inherits this process's environment. Its figures use the inline backend,
    # not an MPLBACKEND set for scripts; and JAX must not grab 75% of a GPU up front, which
    # would starve a second process on the same GPU (a test session, nbval, another run).
    # lantk's progress bars inside cells would end up as stderr text in the rendered book;
    # papermill's bar over the cells reports progress instead.
    saved = {k: os.environ.get(k) for k in ("MPLBACKEND", "XLA_PYTHON_CLIENT_PREALLOCATE",
                                            "TQDM_DISABLE", "LANTK_RUN_DIR",
                                            RUN_PARAMS_ENV)}
    os.environ.pop("MPLBACKEND", None)
    os.environ["LANTK_RUN_DIR"] = str(cwd)  # lantk.claims records into this run's folder
    os.environ[RUN_PARAMS_ENV] = json.dumps(_to_jsonable(all_params or {}))  # CSV columns
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


# --------------------------------------------------------------------------- execution stats
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


# --------------------------------------------------------------------------- the book
def _sync_file(src: Path, dst: Path) -> None:
    """Copy only when the content differs, so Sphinx's incremental build sees no change."""
    _write_if_changed(dst, src.read_bytes())


def _staged_notebook(notebook: Path, root: Path) -> bytes:
    """The executed notebook as the book shows it: the injected ``output_dir`` relative to
    the book's root instead of this machine's absolute path."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    prefix = str(root.resolve()) + os.sep
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags:
            cell.source = cell.source.replace(prefix, "")
        # the parameters (and what papermill injected) are folded away behind a toggle:
        # the chapter's first code cell shows what the run resolved them to
        if ("parameters" in tags or "injected-parameters" in tags) and not any(
                t.startswith(("remove-", "hide-")) for t in tags):
            cell.metadata["tags"] = [*tags, "hide-input"]
    pm_meta = nb.metadata.get("papermill", {})
    for k in ("input_path", "output_path"):
        if isinstance(pm_meta.get(k), str):
            pm_meta[k] = pm_meta[k].replace(prefix, "")
    return nbformat.writes(nb).encode()


def stage_book(root, profile: str, notebooks: dict, pages=(), stage=None) -> Path:
    """Lay out the book for ``jupyter-book build``: executed notebooks (``{source: executed
    notebook}``) in place of the chapter sources, text ``pages`` as they are, the other files
    of ``book/``, ``_toc.yml``, and ``_config.yml`` with execution switched off."""
    import yaml

    root = Path(root).resolve()
    stage = Path(stage) if stage else root / BUILD_DIR / profile / "source"
    stage.mkdir(parents=True, exist_ok=True)
    wanted: dict[Path, bytes | Path] = {}
    cfg = yaml.safe_load((root / "_config.yml").read_text()) or {}
    cfg.setdefault("execute", {})["execute_notebooks"] = "off"
    wanted[stage / "_config.yml"] = yaml.safe_dump(cfg, sort_keys=False).encode()
    wanted[stage / "_toc.yml"] = root / "_toc.yml"
    chapter_sources = {s.resolve() for s in notebooks}
    book = root / BOOK_DIR
    for p in sorted(book.rglob("*")):
        if (p.is_file() and p.resolve() not in chapter_sources and "_build" not in p.parts
                and not any(part.startswith(".") for part in p.relative_to(book).parts)
                and p.suffix not in (".md", ".ipynb", ".pyc")):
            wanted[stage / p.relative_to(root)] = p
    for page in pages:
        wanted[stage / Path(page).resolve().relative_to(root)] = Path(page)
    for src, nb in notebooks.items():
        rel = Path(src).resolve().relative_to(root).with_suffix(".ipynb")
        wanted[stage / rel] = _staged_notebook(nb, root)
    for dst, what in wanted.items():
        _sync_file(what, dst) if isinstance(what, Path) else _write_if_changed(dst, what)
    # drop what an earlier build staged but this one does not have
    for p in sorted(stage.rglob("*"), reverse=True):
        if p.is_file() and p not in wanted:
            p.unlink()
        elif p.is_dir() and not any(p.iterdir()):
            p.rmdir()
    return stage


def _write_if_changed(dst: Path, data: bytes) -> None:
    if dst.is_file() and dst.read_bytes() == data:
        return
    _atomic_write_bytes(dst, data)


def _jupyter_book_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "jupyter-book"
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("jupyter-book")
    if found:
        return [found]
    return [sys.executable, "-c", "from jupyter_book.cli.main import main; main()"]


def build_html(stage: Path, out: Path, *, strict: bool = True, quiet: bool = False) -> Path:
    """``jupyter-book build`` of the staged book; jupyter-book writes the HTML to
    ``<out>/_build/html``. Returns the path of ``index.html``."""
    out.mkdir(parents=True, exist_ok=True)
    cmd = _jupyter_book_cmd() + ["build", str(stage), "--path-output", str(out)]
    if strict:
        cmd += ["-W", "--keep-going"]
    _say(f"lantk: building the HTML book: {' '.join(cmd)}", quiet)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          check=False)
    log = out / "build.log"
    log.write_text(proc.stdout)
    if proc.returncode != 0:
        # Sphinx keeps its environment even when warnings failed the build; the next
        # (incremental) build would not re-read the unchanged pages and could pass without
        # fixing anything. Start the next one from scratch.
        shutil.rmtree(out / "_build" / ".doctrees", ignore_errors=True)
        tail = "\n".join(_strip_ansi(line) for line in proc.stdout.splitlines()[-60:])
        raise BookError(f"jupyter-book build failed (exit {proc.returncode}); log: {log}\n{tail}")
    index = out / "_build" / "html" / "index.html"
    if not index.is_file():
        raise BookError(f"jupyter-book build succeeded but wrote no {index}; log: {log}")
    return index


def build_book(profile: str = DEFAULT_PROFILE, *, root=None, force: bool = False, build: bool = True,
               strict: bool = True, progress: bool = True, quiet: bool = False) -> dict:
    """Execute every chapter of ``_toc.yml`` (cached) and render the HTML book.

    Returns ``{"runs": [RunResult, ...], "index": Path | None}``.
    """
    if profile not in PROFILES:
        raise ParameterError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    root = find_root(root)
    entries = toc_chapters(root)
    if not entries:
        raise FileNotFoundError(f"{root / '_toc.yml'} lists no chapter")
    sources = [_chapter_source(e, root) for e in entries]
    nbs = {s: read_chapter(s) for s in sources}
    pages = [s for s in sources if not is_executable(nbs[s])]
    first = [s for s in sources if s not in pages and not _summarises_runs(nbs[s])]
    last = [s for s in sources if s not in pages and _summarises_runs(nbs[s])]
    results = []
    for s in first + last:
        results.append(run_chapter(s, {}, profile, root=root, force=force, progress=progress,
                                   quiet=quiet))
    index = None
    if build:
        notebooks = {s: r.notebook for s, r in zip(first + last, results)}
        stage = stage_book(root, profile, notebooks, pages)
        index = build_html(stage, root / BUILD_DIR / profile, strict=strict, quiet=quiet)
    return {"runs": results, "index": index}


# --------------------------------------------------------------------------- command line
def add_subcommands(sub) -> None:
    """Register ``lantk run`` and ``lantk book`` on the CLI's subparsers."""
    r = sub.add_parser(
        "run", help="execute one chapter into runs/<profile>/<chapter>/",
        description="Execute one chapter of the book with papermill (kernel python3) and write "
                    "the executed notebook, its results and run.json under "
                    "runs/<profile>/<chapter>/ (or --out). Skipped when nothing changed "
                    "(chapter source, parameters, profile, lantk sources); --force re-executes.")
    r.add_argument("chapter", help="chapter name (e.g. intro) or path (book/intro.md)")
    r.add_argument("-p", "--parameter", nargs="+", action="append", default=[],
                   metavar="NAME VALUE",
                   help="set a parameter of the chapter's parameters cell; VALUE is a Python "
                        "literal where it parses as one (3, 0.5, None, [3,8]), else a string. "
                        "Several values (-p seed 0 1 2) sweep: every combination of the swept "
                        "parameters runs, each into its own folder")
    r.add_argument("-f", "--parameters-file", default=None, metavar="FILE",
                   help="a YAML file of parameters (name: value), as papermill's -f; -p wins")
    r.add_argument("--log-output", action="store_true",
                   help="stream the cells' output to the terminal as they run")
    r.add_argument("--profile", choices=PROFILES, default=DEFAULT_PROFILE,
                   help=PROFILE_HELP)
    r.add_argument("--out", default=None, metavar="DIR",
                   help="write here instead of runs/<profile>/<chapter>/")
    r.add_argument("--root", default=None, help="the book's root (default: found from here)")
    r.add_argument("--force", action="store_true", help="execute even if up to date")
    r.add_argument("--list-parameters", action="store_true",
                   help="print the chapter's parameters and their defaults, run nothing")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.set_defaults(func=_cmd_run)

    ls = sub.add_parser(
        "runs", help="list the recorded runs (parameters, status, wall time, device, date)",
        description="List the runs under runs/<profile>/<chapter>/, one line each; "
                    "lantk.results.load_runs gives the same as a pandas DataFrame.")
    ls.add_argument("chapter", nargs="?", default=None, help="only this chapter")
    ls.add_argument("--profile", choices=PROFILES, default=None, help="only this profile")
    ls.add_argument("--root", default=None, help="the book's root (default: found from here)")
    ls.set_defaults(func=_cmd_runs)

    b = sub.add_parser(
        "book", help="execute every chapter (cached) and build the HTML book",
        description="Execute every chapter in _toc.yml (skipping unchanged ones) and build the "
                    "HTML with jupyter-book (warnings are errors) into _build/<profile>/.")
    b.add_argument("--profile", choices=PROFILES, default=DEFAULT_PROFILE,
                   help=PROFILE_HELP)
    b.add_argument("--root", default=None, help="the book's root (default: found from here)")
    b.add_argument("--force", action="store_true", help="re-execute every chapter")
    b.add_argument("--no-build", action="store_true", help="execute only, no HTML")
    b.add_argument("--allow-warnings", action="store_true",
                   help="do not treat Sphinx warnings as errors")
    b.add_argument("--no-progress", action="store_true", help="no progress bars")
    b.set_defaults(func=_cmd_book)


def sweep_grid(values: dict) -> list[dict]:
    """Every combination of the swept parameters: ``{"seed": [0, 1], "c": [0.1]}`` gives
    ``[{"seed": 0, "c": 0.1}, {"seed": 1, "c": 0.1}]`` (the last name varies fastest)."""
    import itertools

    names = list(values)
    return [dict(zip(names, combo)) for combo in itertools.product(*values.values())]


def _cli_parameters(args) -> list[dict]:
    fixed: dict = {}
    if args.parameters_file:
        import yaml

        try:
            loaded = yaml.safe_load(Path(args.parameters_file).read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ParameterError(f"cannot read the parameters file {args.parameters_file}: {e}")
        if not isinstance(loaded, dict):
            raise ParameterError(f"{args.parameters_file} must map parameter names to values")
        fixed.update(loaded)
    swept: dict = {}
    for item in args.parameter:
        if len(item) < 2:
            raise ParameterError(f"-p {item[0]} needs a value: -p NAME VALUE [VALUE ...]")
        name, vals = item[0], [parse_value(v) for v in item[1:]]
        fixed.pop(name, None)
        swept[name] = vals
    return [dict(fixed, **combo) for combo in sweep_grid(swept)] if swept else [fixed]


def _missing_book_extra() -> str | None:
    """The message for a machine without the ``book`` extra (papermill, jupytext, ...)."""
    import importlib.util

    missing = [m for m in ("papermill", "jupytext", "ipykernel")
               if importlib.util.find_spec(m) is None]
    if not missing:
        return None
    return (f"running chapters needs the book extra ({', '.join(missing)} not installed): "
            f"pip install 'lantk[book]' (or `make venv` in a clone)")


def _cmd_run(args) -> int:
    if not args.list_parameters and (msg := _missing_book_extra()):
        print(f"lantk run: error: {msg}", file=sys.stderr)
        return 2
    try:
        if args.list_parameters:
            src = resolve_chapter(args.chapter, args.root)
            types = parameter_types(src)
            for k, v in chapter_parameters(src).items():
                t = " | ".join("None" if x is type(None) else x.__name__ for x in types.get(k, ()))
                print(f"{k} = {v!r}" + (f"    # {t}" if t else ""))
            return 0
        grid = _cli_parameters(args)
        if args.out and len(grid) > 1:
            raise ParameterError("--out names one folder: a sweep writes one folder per run")
    except ParameterError as e:
        print(f"lantk run: error: {e}", file=sys.stderr)
        return 2
    failed = []
    for i, params in enumerate(grid, 1):
        if len(grid) > 1:
            shown = ", ".join(f"{k}={v!r}" for k, v in params.items())
            print(f"lantk run: [{i}/{len(grid)}] {args.chapter} {shown}", file=sys.stderr,
                  flush=True)
        try:
            res = run_chapter(args.chapter, params, args.profile, out_dir=args.out,
                              root=args.root, force=args.force, progress=not args.no_progress,
                              log_output=args.log_output)
        except ParameterError as e:
            print(f"lantk run: error: {e}", file=sys.stderr)
            return 2
        except ChapterError as e:
            print(f"lantk run: error: {e}", file=sys.stderr)
            failed.append(params)
            continue
        print(res.notebook)
    if len(grid) > 1:
        print(f"lantk run: {len(grid) - len(failed)} of {len(grid)} runs succeeded"
              + (f"; failed: {failed}" if failed else ""), file=sys.stderr)
    return 1 if failed else 0


def _cmd_runs(args) -> int:
    from lantk.results import load_runs

    try:
        df = load_runs(args.chapter, profile=args.profile, root=args.root, results=False)
    except FileNotFoundError as e:
        print(f"lantk runs: error: {e}", file=sys.stderr)
        return 2
    if df.empty:
        print("lantk runs: no runs recorded", file=sys.stderr)
        return 0
    cols = ["chapter", "profile", "run", "status", "wall_time_s", "device", "started"]
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_colwidth", 60,
                           "display.max_rows", None):
        print(df[cols].to_string(index=False))
    return 0


def _cmd_book(args) -> int:
    if msg := _missing_book_extra():
        print(f"lantk book: error: {msg}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    try:
        out = build_book(args.profile, root=args.root, force=args.force,
                         build=not args.no_build, strict=not args.allow_warnings,
                         progress=not args.no_progress)
    except ParameterError as e:
        print(f"lantk book: error: {e}", file=sys.stderr)
        return 2
    except (ChapterError, BookError) as e:
        print(f"lantk book: error: {e}", file=sys.stderr)
        return 1
    n_exec = sum(r.status == "executed" for r in out["runs"])
    print(f"lantk book: {len(out['runs'])} chapters ({n_exec} executed, "
          f"{len(out['runs']) - n_exec} up to date) in {time.perf_counter() - t0:.0f} s")
    if out["index"] is not None:
        print(f"lantk book: open {out['index']}")
    return 0
