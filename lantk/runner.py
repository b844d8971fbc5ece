"""Compatibility module: the names ``lantk.runner`` had before the runner was split.

What chapters call to save results is now :mod:`lantk.results` (``save_results`` /
``save_json``, ``save_table``, ``save_figure``, ``load_results``, ``load_runs``,
``device_info``, ``versions``); the machinery behind ``lantk run`` and ``lantk book`` is the
:mod:`lantk.book` package (:mod:`~lantk.book.chapters`, :mod:`~lantk.book.records`,
:mod:`~lantk.book.execute`, :mod:`~lantk.book.html`, :mod:`~lantk.book.stats`); the
subcommands are in :mod:`lantk.cli`; the one atomic write is :func:`lantk._io.atomic_write`.
Every name below is re-exported from there, so ``from lantk import runner`` and
``runner.save_results(...)`` keep working. Standard library only at import time.

Example (inside a chapter):
    >>> import tempfile
    >>> from lantk import runner
    >>> out = tempfile.mkdtemp()
    >>> runner.save_results("demo", {"accuracy": 0.5}, out, device=False)
    >>> runner.load_results("demo", out)["results"]
    {'accuracy': 0.5}
"""

from __future__ import annotations

from lantk._io import atomic_write
from lantk.book.chapters import (BOOK_DIR, ParameterError, chapter_parameters, chapter_source,
                                 check_parameter_types, check_parameters, find_root,
                                 is_executable, parameter_types, parse_value, read_chapter,
                                 resolve_chapter, toc_chapters)
from lantk.book.execute import (KERNEL_NAME, ChapterError, RunPlan, RunResult, execute_plan,
                                plan_run, run_chapter)
from lantk.book.html import BUILD_DIR, BookError, build_book, build_html, stage_book
from lantk.book.records import (CACHE_VERSION, DEFAULT_RUN, RUN_RECORD, RUNS_DIR, cache_key,
                                lantk_source_hash, read_record, run_slug)
from lantk.book.stats import default_runs_dir, execution_rows, execution_table
from lantk.profiles import DEFAULT_PROFILE, PROFILES
from lantk.results import (RUN_PARAMS_ENV, device_info, load_results, save_figure, save_json,
                           save_results, save_table, to_jsonable, versions)


__all__ = [
    "BOOK_DIR",
    "BUILD_DIR",
    "CACHE_VERSION",
    "DEFAULT_PROFILE",
    "DEFAULT_RUN",
    "KERNEL_NAME",
    "PROFILES",
    "RUNS_DIR",
    "RUN_PARAMS_ENV",
    "RUN_RECORD",
    "BookError",
    "ChapterError",
    "ParameterError",
    "RunPlan",
    "RunResult",
    "atomic_write",
    "build_book",
    "build_html",
    "cache_key",
    "chapter_parameters",
    "chapter_source",
    "check_parameter_types",
    "check_parameters",
    "default_runs_dir",
    "device_info",
    "execute_plan",
    "execution_rows",
    "execution_table",
    "find_root",
    "is_executable",
    "lantk_source_hash",
    "load_results",
    "parameter_types",
    "parse_value",
    "plan_run",
    "read_chapter",
    "read_record",
    "resolve_chapter",
    "run_chapter",
    "run_slug",
    "save_figure",
    "save_json",
    "save_results",
    "save_table",
    "stage_book",
    "to_jsonable",
    "toc_chapters",
    "versions",
]
