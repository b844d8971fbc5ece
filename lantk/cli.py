"""The ``lantk`` command line: ``lantk data fetch|info|verify``, ``lantk run``, ``lantk book``."""

from __future__ import annotations

import argparse
import sys

from lantk import __version__


def _cmd_data_info(args) -> int:
    import warnings

    from lantk import data

    root = data.data_root(args.root)
    print(f"data root: {root}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", data.DataChecksumWarning)
        entries = data.info(root)
    bad = 0
    for name, entry in entries.items():
        names = data.CLASS_NAMES[name]
        for split in data.SPLITS:
            s = entry[split]
            if not s["found"]:
                print(f"{name:8s} {split:5s}  not found (lantk data fetch {name})")
                continue
            if "error" in s:
                bad += 1
                print(f"{name:8s} {split:5s}  ERROR: {s['error']}")
                continue
            per = ", ".join(f"{n}={c}" for n, c in zip(names, s["per_class"]))
            print(f"{name:8s} {split:5s} {s['images']:6d} images  per class: {per}")
    seen = set()
    for w in caught:
        if issubclass(w.category, data.DataChecksumWarning) and str(w.message) not in seen:
            seen.add(str(w.message))
            print(f"warning: {w.message}")
    return 1 if bad else 0


def _cmd_data_verify(args) -> int:
    from lantk import data

    report = data.verify(args.dataset, args.root)
    print(report)
    return 0 if report.ok else 1


def _cmd_data_fetch(args) -> int:
    from lantk import data

    actions: dict = {}
    dest = data.fetch(args.dataset, args.root, progress=not args.quiet, force=args.force,
                      actions=actions)
    new = sorted(f for f, a in actions.items() if a != "verified")
    kept = sorted(f for f, a in actions.items() if a == "verified")
    if not new:
        print(f"{args.dataset}: already installed in {dest}; {len(kept)} files verified against "
              "their checksums, nothing downloaded")
    else:
        replaced = [f for f in new if actions[f] == "replaced"]
        print(f"{args.dataset}: downloaded, verified and installed {len(new)} files in {dest}"
              + (f" (replaced: {', '.join(replaced)})" if replaced else "")
              + (f"; {len(kept)} files already there verified" if kept else ""))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lantk",
        description="Label-Aware Neural Tangent Kernels: data, chapter runs and the book.")
    p.add_argument("--version", action="version", version=f"lantk {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("data", help="find, describe and download datasets")
    dsub = d.add_subparsers(dest="data_command", required=True)
    info = dsub.add_parser("info", help="datasets found under the data root, per split and class")
    info.add_argument("--root", default=None,
                      help="data folder (default: $LANTK_DATA_DIR, else ~/.cache/lantk)")
    info.set_defaults(func=_cmd_data_info)
    fetch = dsub.add_parser("fetch", help="download official archives, verify MD5, install atomically")
    fetch.add_argument("dataset", choices=["mnist", "cifar10"])
    fetch.add_argument("--root", default=None,
                       help="data folder (default: $LANTK_DATA_DIR, else ~/.cache/lantk)")
    fetch.add_argument("--quiet", action="store_true", help="no progress bar")
    fetch.add_argument("--force", action="store_true",
                       help="replace existing files that fail their checksum (files that pass are kept)")
    fetch.set_defaults(func=_cmd_data_fetch)
    verify = dsub.add_parser(
        "verify", help="check every data file against its recorded SHA-256 or official MD5")
    verify.add_argument("dataset", nargs="?", choices=["mnist", "cifar10"], default=None,
                        help="one dataset (default: every dataset found under the root)")
    verify.add_argument("--root", default=None,
                        help="data folder (default: $LANTK_DATA_DIR, else ~/.cache/lantk)")
    verify.set_defaults(func=_cmd_data_verify)

    # lantk run / runs / book (lantk.book imports only the standard library at the top)
    add_book_subcommands(sub)
    return p


# --------------------------------------------------------------------------- run, runs, book
# These import lantk.book (standard library only) when called: `lantk --help` and the data
# commands stay fast, and nothing of the book extra is imported until a chapter runs.
def add_book_subcommands(sub) -> None:
    """Register ``lantk run``, ``lantk runs`` and ``lantk book`` on the CLI's subparsers."""
    from lantk.profiles import DEFAULT_PROFILE, PROFILE_HELP, PROFILES

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
    r.add_argument("--offline", action="store_true",
                   help="do not download missing datasets (also LANTK_OFFLINE=1)")
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
    b.add_argument("--offline", action="store_true",
                   help="do not download missing datasets (also LANTK_OFFLINE=1); chapters "
                        "then fall back to the embedded digits")
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
    """The runs ``-f`` and ``-p`` ask for: one parameter dict per point of the sweep."""
    from pathlib import Path

    from lantk.book.chapters import ParameterError, parse_value

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


def fetch_book_data(profile: str, chapters=None, *, offline: bool = False) -> dict:
    """Before chapters run: fetch the real datasets the profile's chapters ask for and the
    data root lacks (:func:`lantk.data.ensure_book_data`: one line when offline or when the
    download fails, and the chapters fall back to the embedded digits). ``chapters``: names
    (default: every chapter with a profile configuration). Returns ``{dataset: available}``."""
    from lantk import data, profiles

    wanted = profiles.wanted_datasets(profile, chapters)
    if not wanted:
        return {}
    return data.ensure_book_data(wanted, offline=True if offline else None)


def _cmd_run(args) -> int:
    from lantk.book.chapters import (ParameterError, chapter_parameters, parameter_types,
                                     resolve_chapter)
    from lantk.book.execute import ChapterError, run_chapter

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
    from pathlib import Path

    fetch_book_data(args.profile, [Path(str(args.chapter)).stem], offline=args.offline)
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
    from lantk.results import load_runs  # pandas is imported when it is called

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
    import time

    from lantk.book.chapters import ParameterError
    from lantk.book.execute import ChapterError
    from lantk.book.html import BookError, build_book

    if msg := _missing_book_extra():
        print(f"lantk book: error: {msg}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    fetch_book_data(args.profile, offline=args.offline)
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


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, OSError) as e:
        print(f"lantk: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
