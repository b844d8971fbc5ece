"""The book's chapters: the table of contents, the chapter sources and their parameters.

Chapters are jupytext MyST Markdown notebooks in ``book/``, listed in ``_toc.yml`` at the
book's root. Each has one code cell tagged ``parameters`` whose plain (or annotated)
assignments are the chapter's parameters, among them ``profile`` (see
:mod:`lantk.profiles`) and ``output_dir``. Their types are declared by annotations or by
the defaults, and ``lantk run`` checks ``-p`` values against them before any kernel starts.

Standard library only at import time (jupytext and PyYAML are imported when used).

Example:
    >>> parse_value("[3, 8]"), parse_value("cat")
    ([3, 8], 'cat')
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

__all__ = [
    "BOOK_DIR",
    "ParameterError",
    "chapter_parameters",
    "chapter_source",
    "check_parameter_types",
    "check_parameters",
    "find_root",
    "is_executable",
    "parameter_types",
    "parameters_cell",
    "parse_value",
    "reads_runs",
    "read_chapter",
    "resolve_chapter",
    "summarises_runs",
    "toc_chapters",
]

BOOK_DIR = "book"


class ParameterError(ValueError):
    """A parameter the chapter does not declare or a value of the wrong type, or a chapter
    without a parameters cell."""


# --------------------------------------------------------------------------- table of contents
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


def chapter_source(entry: str, root: Path) -> Path:
    """The source file (``.md`` or ``.ipynb``) of a ``_toc.yml`` entry."""
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


# --------------------------------------------------------------------------- parameters
def is_executable(nb) -> bool:
    """A chapter (a notebook with code cells) rather than a text page such as the
    references, which the book shows as it is."""
    return any(c.cell_type == "code" for c in nb.cells)


def parameters_cell(nb):
    """The chapter's code cell tagged ``parameters``, or None."""
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return cell
    return None


def chapter_parameters(nb_or_source) -> dict:
    """The parameters a chapter declares: ``{name: default}`` from the assignments of its
    ``parameters`` cell, parsed with :mod:`ast`. A default that is not a literal is kept as
    its source text."""
    nb = nb_or_source if hasattr(nb_or_source, "cells") else read_chapter(nb_or_source)
    cell = parameters_cell(nb)
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


def _annotation_types(node) -> tuple | None:
    """The types an annotation names, in order: ``int | None``, ``Optional[int]``,
    ``Union[int, None]``, ``list[int]`` (a list) and their string forms (``"Optional[int]"``,
    which papermill's parser also reads); None where it names anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            return _annotation_types(ast.parse(node.value, mode="eval").body)
        except SyntaxError:
            return None
    if isinstance(node, ast.Constant) and node.value is None:
        return (type(None),)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        left, right = _annotation_types(node.left), _annotation_types(node.right)
        return left + right if left and right else None
    name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", None)
    if isinstance(node, ast.Subscript):
        base = node.value
        name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", None)
        if name in ("Optional", "Union"):
            args = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            parts = [_annotation_types(a) for a in args]
            if not all(parts):
                return None
            out = sum(parts, ())
            return out + (type(None),) if name == "Optional" else out
    if name in _TYPE_NAMES:
        return (_TYPE_NAMES[name],)
    return None


def parameter_types(nb_or_source) -> dict:
    """The declared type of each parameter: its annotation in the parameters cell
    (``n_train: int | None = None``, or ``Optional[int]``, which papermill's parser reads
    too), else the type of its default (``None`` and non-literal defaults declare nothing).
    Returns ``{name: tuple of types}``."""
    nb = nb_or_source if hasattr(nb_or_source, "cells") else read_chapter(nb_or_source)
    defaults = chapter_parameters(nb)
    cell = parameters_cell(nb)
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
            declared = _annotation_types(node.annotation)
            if declared:
                annotated[node.target.id] = declared
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
    """Refuse parameters the chapter does not declare, listing the ones it does."""
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise ParameterError(
            f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} for "
            f"{chapter}; valid parameters: {', '.join(declared)}")


# --------------------------------------------------------------------------- front matter
def summarises_runs(nb) -> bool:
    """Front matter ``lantk: {summarises_runs: true}``: the chapter summarises the other
    chapters' runs (the execution statistics), so it runs after them."""
    return bool((nb.metadata.get("lantk") or {}).get("summarises_runs"))


def reads_runs(nb) -> list:
    """The chapters whose results this chapter reads (front matter ``lantk: {reads_runs:
    [elasticity]}``)."""
    reads = (nb.metadata.get("lantk") or {}).get("reads_runs") or []
    return [str(r) for r in ([reads] if isinstance(reads, str) else reads)]
