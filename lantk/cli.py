"""The ``lantk`` command line: ``lantk data fetch|info``, ``lantk run``, ``lantk book``."""

from __future__ import annotations

import argparse
import sys

from lantk import __version__


def _cmd_data_info(args) -> int:
    from lantk import data

    root = data.data_root(args.root)
    print(f"data root: {root}")
    for name, entry in data.info(root).items():
        names = data.CLASS_NAMES[name]
        for split in data.SPLITS:
            s = entry[split]
            if not s["found"]:
                print(f"{name:8s} {split:5s}  not found (lantk data fetch {name})")
                continue
            per = ", ".join(f"{n}={c}" for n, c in zip(names, s["per_class"]))
            print(f"{name:8s} {split:5s} {s['images']:6d} images  per class: {per}")
    return 0


def _cmd_data_fetch(args) -> int:
    from lantk import data

    dest = data.fetch(args.dataset, args.root, progress=not args.quiet)
    print(f"{args.dataset}: verified and installed in {dest}")
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
    fetch.set_defaults(func=_cmd_data_fetch)

    # lantk run / lantk book (lantk.runner imports only the standard library at the top)
    from lantk import runner

    runner.add_subcommands(sub)
    return p


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
