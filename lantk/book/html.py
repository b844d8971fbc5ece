"""The HTML book: execute every chapter (cached), stage the executed notebooks, render.

:func:`build_book` executes every chapter in ``_toc.yml`` with
:func:`lantk.book.execute.run_chapter` (chapters whose front matter sets
``lantk: {summarises_runs: true}`` after the others), :func:`stage_book` lays out the
executed notebooks with ``_config.yml`` (execution switched off), ``_toc.yml`` and the other
files of ``book/`` in ``_build/<profile>/source``, and :func:`build_html` renders them with
``jupyter-book build`` (warnings are errors) into ``_build/<profile>/_build/html``.

Standard library only at import time (PyYAML, nbformat and jupyter-book when used).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from lantk._io import atomic_write
from lantk.book.chapters import (BOOK_DIR, ParameterError, chapter_source, find_root,
                                 is_executable, read_chapter, summarises_runs, toc_chapters)
from lantk._io import say as _say, strip_ansi as _strip_ansi
from lantk.book.execute import run_chapter
from lantk.profiles import DEFAULT_PROFILE, PROFILES

__all__ = ["BUILD_DIR", "BookError", "build_book", "build_html", "stage_book"]

BUILD_DIR = "_build"


class BookError(RuntimeError):
    """``jupyter-book build`` failed."""


def _sync_file(src: Path, dst: Path) -> None:
    """Copy only when the content differs, so Sphinx's incremental build sees no change."""
    _write_if_changed(dst, src.read_bytes())


def staged_notebook(notebook: Path, root: Path) -> bytes:
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
        wanted[stage / rel] = staged_notebook(nb, root)
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
    atomic_write(dst, data)


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
    sources = [chapter_source(e, root) for e in entries]
    nbs = {s: read_chapter(s) for s in sources}
    pages = [s for s in sources if not is_executable(nbs[s])]
    first = [s for s in sources if s not in pages and not summarises_runs(nbs[s])]
    last = [s for s in sources if s not in pages and summarises_runs(nbs[s])]
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
