"""The machinery behind ``lantk run``, ``lantk runs`` and ``lantk book``.

* :mod:`lantk.book.chapters` -- the table of contents (``_toc.yml``), the chapter sources
  (jupytext MyST Markdown in ``book/``) and their parameters, with declared types;
* :mod:`lantk.book.records` -- run folders (``runs/<profile>/<chapter>/<run>/``), their
  ``run.json`` records and the cache keys;
* :mod:`lantk.book.execute` -- a run as a plan (:func:`plan_run`: what to run, where, under
  which key, whether it is up to date) followed by its execution with papermill
  (:func:`execute_plan`; :func:`run_chapter` does both);
* :mod:`lantk.book.html` -- staging the executed notebooks and ``jupyter-book build``;
* :mod:`lantk.book.stats` -- the execution-statistics page.

What chapters call to save their results is :mod:`lantk.results`. Every module here imports
only the standard library (and lantk's standard-library modules) at import time, so the
command line starts fast and works without the ``book`` extra until a chapter runs.
"""

from lantk.book.chapters import (ParameterError, chapter_parameters, find_root, parameter_types,
                                 parse_value, read_chapter, resolve_chapter, toc_chapters)
from lantk.book.execute import (ChapterError, RunPlan, RunResult, execute_plan, plan_run,
                                run_chapter)
from lantk.book.html import BookError, build_book, build_html, stage_book
from lantk.book.records import cache_key, lantk_source_hash, read_record, run_slug
from lantk.book.stats import default_runs_dir, execution_rows, execution_table

__all__ = [
    "BookError",
    "ChapterError",
    "ParameterError",
    "RunPlan",
    "RunResult",
    "build_book",
    "build_html",
    "cache_key",
    "chapter_parameters",
    "default_runs_dir",
    "execute_plan",
    "execution_rows",
    "execution_table",
    "find_root",
    "lantk_source_hash",
    "parameter_types",
    "parse_value",
    "plan_run",
    "read_chapter",
    "read_record",
    "resolve_chapter",
    "run_chapter",
    "run_slug",
    "stage_book",
    "toc_chapters",
]
