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
