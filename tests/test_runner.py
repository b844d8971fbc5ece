"""lantk.book, lantk.results and the lantk.runner compatibility names: parameters, `lantk run`,
the run plan and cache, and the helpers chapters call.

The tests that execute notebooks use a tiny throwaway book in tmp_path (one chapter, two
cells), so each execution costs a kernel start-up (a few seconds), not a chapter's compute.
"""

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import MYST_HEADER

from lantk import cli, results, runner
from lantk.book import chapters, execute, html, records

TINY = MYST_HEADER + textwrap.dedent('''\

    # Tiny

    ```{code-cell} ipython3
    :tags: [parameters]

    profile = "default"
    n = 3
    label = "a"
    fail = False
    output_dir = "."
    ```

    ```{code-cell} ipython3
    import os
    from lantk import runner
    if fail:
        raise RuntimeError("boom from the tiny chapter")
    runner.save_results("tiny", {"n": n, "label": label, "cwd": os.getcwd()}, output_dir)
    runner.save_table("squares", ["k", "k2"], [(k, k * k) for k in range(n)], output_dir)
    print("n squared:", n * n)
    ```
    ''')


@pytest.fixture
def book(tmp_path) -> Path:
    """A one-chapter book: _toc.yml and book/tiny.md."""
    (tmp_path / "book").mkdir()
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/tiny\n")
    (tmp_path / "book" / "tiny.md").write_text(TINY)
    return tmp_path


def run_cli(*args, cwd):
    """`lantk ...` as a user types it (a fresh process; exit code, stdout, stderr)."""
    proc = subprocess.run([sys.executable, "-m", "lantk.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300, check=False)
    return proc.returncode, proc.stdout, proc.stderr


# --------------------------------------------------------------------------- parameters
@pytest.mark.parametrize("text, value", [
    ("3", 3), ("0.5", 0.5), ("None", None), ("True", True), ("[3, 8]", [3, 8]),
    ("'cat'", "cat"), ("cat", "cat"), ("1e-3", 1e-3), ("(1, 2)", (1, 2)), ("mnist", "mnist"),
    ("a b", "a b"),
])
def test_parse_value_literal_else_string(text, value):
    assert runner.parse_value(text) == value


def test_chapter_parameters_parsed_with_ast(tmp_path):
    src = tmp_path / "c.md"
    src.write_text(TINY.replace('fail = False\n', 'fail = False\nx: int = 4\na, b = 1, 2\n'
                                'sizes = dict(n=3)  # not a literal\n'))
    params = runner.chapter_parameters(src)
    assert params == {"profile": "default", "n": 3, "label": "a", "fail": False, "x": 4,
                      "a": (1, 2), "b": (1, 2), "sizes": "dict(n=3)", "output_dir": "."}


def test_chapter_without_parameters_cell_is_refused(book):
    (book / "book" / "tiny.md").write_text(TINY.replace(":tags: [parameters]\n", ""))
    with pytest.raises(runner.ParameterError, match="parameters"):
        runner.run_chapter("tiny", {}, root=book, quiet=True)


def test_parameters_cell_must_declare_profile_and_output_dir(book):
    (book / "book" / "tiny.md").write_text(TINY.replace('output_dir = "."\n', ""))
    with pytest.raises(runner.ParameterError, match="output_dir"):
        runner.run_chapter("tiny", {}, root=book, quiet=True)


def test_unknown_parameter_refused_listing_valid_ones(book, capsys):
    rc = cli.main(["run", "tiny", "--root", str(book), "-p", "m", "3"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "unknown parameter m" in err
    assert "valid parameters: profile, n, label, fail, output_dir" in err
    assert not (book / "runs").exists()  # nothing was executed


def test_output_dir_and_contradicting_profile_are_refused(book):
    with pytest.raises(runner.ParameterError, match="--out"):
        runner.run_chapter("tiny", {"output_dir": "/tmp"}, root=book, quiet=True)
    with pytest.raises(runner.ParameterError, match="contradicts"):
        runner.run_chapter("tiny", {"profile": "paper"}, "smoke", root=book, quiet=True)
    with pytest.raises(runner.ParameterError, match="profile"):
        runner.run_chapter("tiny", {}, "huge", root=book, quiet=True)


def test_unknown_chapter_lists_the_chapters(book):
    with pytest.raises(FileNotFoundError, match="chapters in _toc.yml: tiny"):
        runner.run_chapter("nope", {}, root=book, quiet=True)


def test_list_parameters(book, capsys):
    assert cli.main(["run", "tiny", "--root", str(book), "--list-parameters"]) == 0
    assert "n = 3" in capsys.readouterr().out


def test_cli_keeps_data_commands_and_adds_run_and_book():
    parser = cli.build_parser()
    for argv in (["data", "info"], ["data", "fetch", "mnist"], ["run", "intro"], ["book"]):
        assert callable(parser.parse_args(argv).func)


def test_toc_chapters_in_reading_order(tmp_path):
    (tmp_path / "_toc.yml").write_text(textwrap.dedent("""\
        format: jb-book
        root: book/a
        parts:
          - caption: One
            chapters:
              - file: book/b.md
                sections:
                  - file: book/c
          - caption: Two
            chapters:
              - file: book/d
        """))
    assert runner.toc_chapters(tmp_path) == ["book/a", "book/b", "book/c", "book/d"]
    (tmp_path / "book").mkdir()
    assert runner.find_root(tmp_path / "book") == tmp_path.resolve()


def test_papermill_reads_every_chapter_parameter_as_lantk_does():
    """papermill parses a parameters cell line by line and skips (with a warning on every
    run) any line holding more than one '=', e.g. one in a comment; the book has none."""
    from papermill.translators import PythonTranslator

    root = Path(__file__).resolve().parents[1]
    for entry in runner.toc_chapters(root):
        nb = runner.read_chapter(root / f"{entry}.md")
        if not runner.is_executable(nb):
            continue
        cell = chapters.parameters_cell(nb)
        seen = [p.name for p in PythonTranslator.inspect(cell)]
        assert seen == list(runner.chapter_parameters(nb)), entry


# --------------------------------------------------------------------------- execution
def _record(book, profile="default", run="default"):
    return json.loads((book / "runs" / profile / "tiny" / run / "run.json").read_text())


@pytest.mark.slow
def test_run_writes_notebook_results_and_record(book):
    res = runner.run_chapter("tiny", {"n": 4}, root=book, progress=False, quiet=True)
    out = book / "runs" / "default" / "tiny" / runner.run_slug({"n": 4})
    assert out.name.startswith("n=4-")
    assert res.status == "executed" and res.out_dir == out.resolve()
    assert (out / "tiny.ipynb").is_file()
    results = json.loads((out / "tiny.json").read_text())
    assert results["results"]["n"] == 4
    assert results["results"]["cwd"] == str(out.resolve())  # the kernel runs in output_dir
    assert results["lantk_version"] and results["device"]["describe"]
    rows = list(csv.reader((out / "squares.csv").open()))
    # the run's parameters are columns of every table it saves
    assert rows[0] == ["k", "k2", "profile", "n", "label", "fail"]
    assert [r[:2] for r in rows[1:]] == [["0", "0"], ["1", "1"], ["2", "4"], ["3", "9"]]
    assert rows[1][2:] == ["default", "4", "a", "False"]
    rec = _record(book, run=out.name)
    assert rec["status"] == "ok" and rec["parameters"] == {"n": 4, "profile": "default"}
    assert rec["device"] in ("CPU",) or rec["device"].startswith(("GPU", "TPU"))
    assert rec["wall_time_s"] > 0 and rec["lantk_version"]
    assert "tiny.json" in rec["files"] and "squares.csv" in rec["files"]
    # the injected parameters are in the notebook, the runner's bookkeeping cell is not
    import nbformat

    nb = nbformat.read(str(out / "tiny.ipynb"), as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "n = 4" in injected[0].source
    assert f'output_dir = "{out.resolve()}"' in injected[0].source
    assert not any("lantk-kernel-info" in c.metadata.get("tags", []) for c in nb.cells)
    assert any("n squared: 16" in o.get("text", "") for c in nb.cells if c.cell_type == "code"
               for o in c.outputs)
    assert not list(out.glob(".kernel-info*"))
    assert rec["versions"]["numpy"] and rec["versions"]["jaxlib"] and rec["versions"]["scipy"]
    assert rec["versions"]["scikit-learn"] and len(rec["versions"]["lantk_source_sha256"]) == 64


@pytest.mark.slow
def test_changed_parameters_get_their_own_run_folder(book):
    tiny = book / "runs" / "default" / "tiny"
    out1 = tiny / runner.run_slug({"n": 2, "label": "first"})
    rc, stdout, _ = run_cli("run", "tiny", "-p", "n", "2", "-p", "label", "first", cwd=book)
    assert rc == 0 and stdout.strip() == str((out1 / "tiny.ipynb").resolve())
    first = json.loads((out1 / "tiny.json").read_text())["results"]
    assert first["n"] == 2 and first["label"] == "first"
    key1 = _record(book, run=out1.name)["key"]

    rc, _, err = run_cli("run", "tiny", "-p", "n", "5", "-p", "label", "'second'", cwd=book)
    assert rc == 0, err
    out2 = tiny / runner.run_slug({"n": 5, "label": "second"})
    second = json.loads((out2 / "tiny.json").read_text())["results"]
    assert second["n"] == 5 and second["label"] == "second"
    assert _record(book, run=out2.name)["key"] != key1
    assert "n squared: 25" in (out2 / "tiny.ipynb").read_text()
    assert len(list(csv.reader((out2 / "squares.csv").open()))) == 6
    # the first run is kept, and is a cache hit when asked for again
    assert json.loads((out1 / "tiny.json").read_text())["results"]["n"] == 2
    rc, _, err = run_cli("run", "tiny", "-p", "n", "2", "-p", "label", "first", cwd=book)
    assert rc == 0 and "up to date" in err

    # another profile, and --out, write elsewhere
    kw = {"root": book, "progress": False, "quiet": True}
    runner.run_chapter("tiny", {}, "paper", **kw)
    assert _record(book, "paper")["parameters"] == {"profile": "paper"}
    assert _record(book, run=out2.name)["parameters"]["n"] == 5  # the first run is untouched
    runner.run_chapter("tiny", {}, out_dir=book / "elsewhere", **kw)
    assert json.loads((book / "elsewhere" / "tiny.json").read_text())["results"]["n"] == 3
    assert (book / "elsewhere" / "tiny.ipynb").is_file()


@pytest.mark.slow
def test_failing_cell_fails_the_command_with_its_error(book):
    kw = {"root": book, "progress": False, "quiet": True}
    assert runner.run_chapter("tiny", {}, **kw).status == "executed"
    rc, _, err = run_cli("run", "tiny", "-p", "fail", "True", "--no-progress", cwd=book)
    assert rc == 1
    assert "tiny: cell In [3] failed with RuntimeError: boom from the tiny chapter" in err
    assert "Traceback" in err and 'raise RuntimeError("boom from the tiny chapter")' in err
    # the failed run's folder says it failed; the default run is untouched and cached
    failed = runner.read_record(book / "runs" / "default" / "tiny" / runner.run_slug({"fail": True}))
    assert failed["status"] == "failed" and "boom" in failed["error"]
    assert runner.run_chapter("tiny", {}, **kw).status == "cached"
    with pytest.raises(runner.ChapterError, match="boom"):
        runner.run_chapter("tiny", {"fail": True}, **kw)
    # a run that fails where a good one was leaves no result of the old run beside it
    src = book / "book" / "tiny.md"
    src.write_text(src.read_text().replace("fail = False", "fail = True"))
    with pytest.raises(runner.ChapterError, match="boom"):
        runner.run_chapter("tiny", {}, **kw)
    out = book / "runs" / "default" / "tiny" / "default"
    assert not (out / "tiny.json").exists() and not (out / "squares.csv").exists()
    assert runner.read_record(out)["status"] == "failed"


@pytest.mark.slow
def test_cache_skips_unchanged_and_reruns_on_source_or_lantk_change(book, monkeypatch):
    kw = {"root": book, "progress": False, "quiet": True}
    first = runner.run_chapter("tiny", {}, **kw)
    assert first.status == "executed"
    again = runner.run_chapter("tiny", {}, **kw)
    assert again.status == "cached" and again.record["started"] == first.record["started"]
    assert runner.run_chapter("tiny", {"n": 3}, **kw).status == "cached"  # = the default

    # the chapter's source changed
    src = book / "book" / "tiny.md"
    src.write_text(src.read_text().replace('print("n squared:"', 'print("n squared is"'))
    assert runner.run_chapter("tiny", {}, **kw).status == "executed"
    assert runner.run_chapter("tiny", {}, **kw).status == "cached"

    # the lantk sources changed (same chapter, same parameters)
    monkeypatch.setattr(execute, "lantk_source_hash", lambda: "0" * 64)
    assert runner.run_chapter("tiny", {}, **kw).status == "executed"
    assert runner.run_chapter("tiny", {}, **kw).status == "cached"

    # --force
    assert runner.run_chapter("tiny", {}, force=True, **kw).status == "executed"


def test_cache_key_ingredients():
    base = runner.cache_key("s", {"n": 1, "profile": "smoke"}, "smoke", "L")
    assert base == runner.cache_key("s", {"profile": "smoke", "n": 1}, "smoke", "L")
    assert base != runner.cache_key("t", {"n": 1, "profile": "smoke"}, "smoke", "L")
    assert base != runner.cache_key("s", {"n": 2, "profile": "smoke"}, "smoke", "L")
    assert base != runner.cache_key("s", {"n": 1, "profile": "smoke"}, "paper", "L")
    assert base != runner.cache_key("s", {"n": 1, "profile": "smoke"}, "smoke", "M")


def test_lantk_source_hash_covers_the_package(tmp_path, monkeypatch):
    h = records.lantk_source_hash()
    assert len(h) == 64 and h == records.lantk_source_hash() == runner.lantk_source_hash()
    # a copy of the package with one changed file hashes differently
    import shutil

    pkg = Path(records.__file__).parents[1]
    assert pkg == Path(runner.__file__).parent  # the whole package, lantk/book included
    copy = tmp_path / "lantk"
    shutil.copytree(pkg, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(records, "__file__", str(copy / "book" / "records.py"))
    assert records.lantk_source_hash() == h
    (copy / "data.py").write_text((copy / "data.py").read_text() + "\n# changed\n")
    changed = records.lantk_source_hash()
    assert changed != h
    (copy / "book" / "html.py").write_text((copy / "book" / "html.py").read_text() + "\n#\n")
    assert records.lantk_source_hash() != changed


# --------------------------------------------------------------------------- helpers
def test_save_results_is_json_with_metadata(tmp_path):
    import numpy as np

    runner.save_results("r", {"acc": np.float64(0.25), "v": np.arange(3), "t": (1, 2),
                              "nan": float("nan")}, tmp_path, config={"seed": 0})
    rec = runner.load_results("r.json", tmp_path)
    assert rec["results"] == {"acc": 0.25, "v": [0, 1, 2], "t": [1, 2], "nan": None}
    assert rec["config"] == {"seed": 0} and rec["name"] == "r"
    assert rec["lantk_version"] and rec["wall_time_s"] >= 0 and rec["date"]
    assert rec["device"]["platform"] in ("cpu", "gpu", "cuda", "rocm", "tpu")
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary left behind
    with pytest.raises(ValueError):
        runner.save_results("../evil", {}, tmp_path)


def test_save_table_forms(tmp_path):
    runner.save_table("a", ["x", "y"], [(1, 2.5), (3, 4.0)], tmp_path)
    runner.save_table("b", [{"x": 1, "y": 2.5}, {"x": 3, "y": 4.0}], output_dir=tmp_path)
    runner.save_table("c", {"x": [1, 3], "y": [2.5, 4.0]}, output_dir=tmp_path)
    texts = {n: (tmp_path / f"{n}.csv").read_text() for n in "abc"}
    assert texts["a"] == texts["b"] == texts["c"] == "x,y\n1,2.5\n3,4.0\n"
    with pytest.raises(ValueError, match="columns"):
        runner.save_table("d", ["x", "y"], [(1,)], tmp_path)


def test_save_figure_keeps_the_figure_open(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    assert runner.save_figure(fig, "f", tmp_path, formats=("png", "pdf")) is None
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "f.pdf").read_bytes()[:4] == b"%PDF"
    assert plt.fignum_exists(fig.number)
    plt.close(fig)


def test_execution_rows_from_run_records(tmp_path):
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/b\nchapters:\n"
                                       "  - file: book/a\n  - file: book/execution\n")
    runs = tmp_path / "runs" / "smoke"
    for name, dev in (("a", "GPU: NVIDIA H100 80GB HBM3"), ("b", "CPU"), ("execution", "CPU")):
        (runs / name / "default").mkdir(parents=True)
        (runs / name / "default" / "run.json").write_text(json.dumps({
            "chapter": name, "profile": "smoke", "wall_time_s": 12.345, "device": dev,
            "status": "ok",
            "lantk_version": "0.1.0", "lantk_sha256": "abcdef0123456789",
            "started": "2026-01-02T03:04:05+00:00", "key": name, "finished": "x"}))
    rows = runner.execution_rows(runs, exclude=["execution"])
    assert [r["chapter"] for r in rows] == ["b", "a"]  # the order of _toc.yml
    assert rows[1]["device"] == "GPU: NVIDIA H100 80GB HBM3"
    assert rows[0]["wall time (s)"] == 12.3 and rows[0]["date (UTC)"] == "2026-01-02 03:04:05"
    table = runner.execution_table(runs, exclude=["execution"])
    assert table.splitlines()[0].startswith("| chapter | profile | wall time (s) | device")
    assert len(table.splitlines()) == 4
    assert runner.default_runs_dir(runs / "execution" / "default", "smoke") == runs.resolve()
    assert runner.execution_table(tmp_path / "none").startswith("*No chapter runs")
    # the summary chapter's key follows the other chapters' records
    d1 = records.runs_digest(runs, exclude="execution")
    (runs / "a" / "default" / "run.json").write_text(json.dumps({"chapter": "a", "key": "new"}))
    assert records.runs_digest(runs, exclude="execution") != d1


# --------------------------------------------------------------------------- runs are data
@pytest.mark.parametrize("name, value, expected", [
    ("n", "abc", "parameter n of tiny expects int, got 'abc' (str)"),
    ("n", "[1, 2]", "parameter n of tiny expects int, got [1, 2] (list)"),
    ("n", "5.5", "parameter n of tiny expects int, got 5.5 (float)"),
    ("n", "True", "parameter n of tiny expects int, got True (bool)"),
    ("fail", "1", "parameter fail of tiny expects bool, got 1 (int)"),
    ("label", "3", "parameter label of tiny expects str, got 3 (int)"),
])
def test_parameters_of_the_wrong_type_are_refused_before_execution(book, capsys, name, value,
                                                                   expected):
    rc = cli.main(["run", "tiny", "--root", str(book), "-p", name, value])
    assert rc == 2
    assert expected in capsys.readouterr().err
    assert not (book / "runs").exists()  # no kernel was started


def test_annotations_declare_types_where_the_default_is_none(tmp_path):
    src = tmp_path / "c.md"
    src.write_text(TINY.replace('fail = False\n', 'fail = False\nsize: int | None = None\n'
                                'free = None\n'))
    types = runner.parameter_types(src)
    assert types["size"] == (int, type(None)) and "free" not in types
    runner.check_parameter_types({"size": None, "free": "x"}, types, "c")
    with pytest.raises(runner.ParameterError, match="size of c expects int or None"):
        runner.check_parameter_types({"size": 2.5}, types, "c")


def test_sweep_grid_and_parameter_file(tmp_path):
    assert cli.sweep_grid({"seed": [0, 1], "c": [0.1, 0.3]}) == [
        {"seed": 0, "c": 0.1}, {"seed": 0, "c": 0.3}, {"seed": 1, "c": 0.1}, {"seed": 1, "c": 0.3}]
    (tmp_path / "p.yaml").write_text("n: 7\nlabel: z\n")
    args = cli.build_parser().parse_args(["run", "tiny", "-f", str(tmp_path / "p.yaml"),
                                          "-p", "n", "1", "2"])
    assert cli._cli_parameters(args) == [{"label": "z", "n": 1}, {"label": "z", "n": 2}]


@pytest.mark.slow
def test_a_sweep_keeps_every_run_and_load_runs_tables_them(book, capsys):
    from lantk.results import load_runs

    rc = cli.main(["run", "tiny", "--root", str(book), "-p", "n", "1", "2", "3",
                   "--no-progress"])
    assert rc == 0
    assert "3 of 3 runs succeeded" in capsys.readouterr().err
    folders = sorted(p.name for p in (book / "runs" / "default" / "tiny").iterdir())
    # n = 3 is the chapter's default: that run is the one the book shows
    assert folders == sorted([runner.run_slug({"n": 1}), runner.run_slug({"n": 2}), "default"])
    df = load_runs("tiny", root=book)
    assert sorted(df["n"]) == [1, 2, 3] and set(df["status"]) == {"ok"}
    assert set(df["label"]) == {"a"}  # defaults are columns too
    assert sorted(df["tiny.n"]) == [1, 2, 3]  # the scalar results of each run
    assert cli.main(["runs", "tiny", "--root", str(book)]) == 0
    listing = capsys.readouterr().out
    assert listing.count("tiny") >= 3 and "ok" in listing


@pytest.mark.slow
def test_results_are_valid_json_and_follow_the_umask(book):
    import os
    import stat

    res = runner.run_chapter("tiny", {}, root=book, progress=False, quiet=True)
    old = os.umask(0o022)
    try:
        runner.save_results("m", {"x": float("nan")}, res.out_dir, device=False)
    finally:
        os.umask(old)
    path = res.out_dir / "m.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(c))["results"] == {
        "x": None}
    for p in res.out_dir.iterdir():  # what the run wrote is readable by the group
        if p.is_file() and not p.name.startswith("."):
            assert p.stat().st_mode & stat.S_IRGRP, p


@pytest.mark.slow
def test_changed_data_files_invalidate_the_run(book, tmp_path, monkeypatch):
    data = tmp_path / "data"
    (data / "mnist").mkdir(parents=True)
    f = data / "mnist" / "train-images-idx3-ubyte.gz"
    f.write_bytes(b"one")
    monkeypatch.setenv("LANTK_DATA_DIR", str(data))
    kw = {"root": book, "progress": False, "quiet": True}
    assert runner.run_chapter("tiny", {}, **kw).status == "executed"
    assert runner.run_chapter("tiny", {}, **kw).status == "cached"
    f.write_bytes(b"other content")  # same names, other files
    assert runner.run_chapter("tiny", {}, **kw).status == "executed"


def test_lantk_run_without_the_book_extra_names_it(book, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "papermill" else real(name, *a))
    assert cli.main(["run", "tiny", "--root", str(book)]) == 2
    err = capsys.readouterr().err
    assert "needs the book extra (papermill not installed)" in err and "lantk[book]" in err


def test_staged_notebooks_fold_the_parameter_cells_away(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("n = 3", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(f'output_dir = "{tmp_path}/runs/x"',
                                          metadata={"tags": ["injected-parameters"]}),
                nbformat.v4.new_code_cell("p = 1", metadata={"tags": ["parameters", "remove-cell"]}),
                nbformat.v4.new_code_cell("print(n)")]
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, str(path))
    staged = nbformat.reads(html.staged_notebook(path, tmp_path).decode(), as_version=4)
    tags = [c.metadata.get("tags", []) for c in staged.cells]
    assert tags == [["parameters", "hide-input"], ["injected-parameters", "hide-input"],
                    ["parameters", "remove-cell"], []]
    assert staged.cells[1].source == 'output_dir = "runs/x"'


def test_a_chapter_that_reads_another_reruns_when_it_reruns(tmp_path):
    (tmp_path / "book").mkdir()
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/tiny\nchapters:\n"
                                       "  - file: book/reader\n")
    (tmp_path / "book" / "tiny.md").write_text(TINY)
    reader = TINY.replace("name: python3\n---", "name: python3\nlantk:\n  reads_runs: [tiny]\n---")
    (tmp_path / "book" / "reader.md").write_text(reader)
    kw = {"root": tmp_path, "progress": False, "quiet": True}
    runner.run_chapter("tiny", {}, **kw)
    assert runner.run_chapter("reader", {}, **kw).status == "executed"
    assert runner.run_chapter("reader", {}, **kw).status == "cached"
    runner.run_chapter("tiny", {}, force=True, **kw)
    assert runner.run_chapter("reader", {}, **kw).status == "executed"


# --------------------------------------------------------------------------- the run plan
def test_plan_computes_the_run_and_writes_nothing(book, monkeypatch):
    plan = execute.plan_run("tiny", {"n": 4}, root=book)
    out = (book / "runs" / "default" / "tiny" / runner.run_slug({"n": 4})).resolve()
    assert plan.action == "execute" and not plan.up_to_date
    assert plan.out_dir == out and plan.notebook == out / "tiny.ipynb" and plan.run == out.name
    assert plan.parameters == {"n": 4, "profile": "default"}
    assert plan.all_parameters == {"profile": "default", "n": 4, "label": "a", "fail": False}
    assert len(plan.key) == 64 and plan.record is None
    assert not (book / "runs").exists()  # planning wrote nothing

    # a folder holding a successful run under this key: up to date, and executing the plan
    # returns the recorded run without starting a kernel
    out.mkdir(parents=True)
    plan.notebook.write_text("{}")
    records.write_record(out, {"key": plan.key, "status": "ok", "started": "earlier",
                               "wall_time_s": 1.5})
    again = execute.plan_run("tiny", {"n": 4}, root=book)
    assert again.up_to_date and again.action == "cached" and again.key == plan.key
    monkeypatch.setattr(execute, "_papermill", lambda *a, **k: pytest.fail("executed"))
    res = execute.execute_plan(again, quiet=True)
    assert res.status == "cached" and res.out_dir == out and res.record["started"] == "earlier"

    # --force, a failed record or another key: execute
    assert execute.plan_run("tiny", {"n": 4}, root=book, force=True).action == "execute"
    assert execute.plan_run("tiny", {"n": 4}, root=book, extra_key="x").action == "execute"
    records.write_record(out, {"key": plan.key, "status": "failed"})
    assert execute.plan_run("tiny", {"n": 4}, root=book).action == "execute"


def test_plan_for_changed_parameters_executes_into_their_own_folder(book):
    base = execute.plan_run("tiny", {}, root=book)
    assert base.out_dir.name == "default" and base.parameters == {"profile": "default"}
    assert execute.plan_run("tiny", {"n": 3}, root=book).key == base.key  # = the default
    other = execute.plan_run("tiny", {"n": 5, "label": "b"}, root=book)
    assert other.action == "execute" and other.key != base.key
    assert other.out_dir == (book / "runs" / "default" / "tiny"
                             / runner.run_slug({"n": 5, "label": "b"})).resolve()
    paper = execute.plan_run("tiny", {}, "paper", root=book)
    assert paper.out_dir.parts[-3:] == ("paper", "tiny", "default") and paper.key != base.key
    elsewhere = execute.plan_run("tiny", {}, root=book, out_dir=book / "elsewhere")
    assert elsewhere.out_dir == (book / "elsewhere").resolve() and elsewhere.key == base.key


def test_plan_refuses_a_folder_that_holds_no_run_of_the_chapter(book):
    foreign = book / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(runner.ParameterError, match="not a run of tiny"):
        execute.plan_run("tiny", {}, root=book, out_dir=foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"


@pytest.mark.slow
def test_executing_a_plan_writes_where_it_said(book):
    plan = execute.plan_run("tiny", {"n": 2}, root=book)
    res = execute.execute_plan(plan, progress=False, quiet=True)
    assert res.status == "executed" and res.out_dir == plan.out_dir
    assert res.record["key"] == plan.key and res.record["run"] == plan.run
    assert json.loads((plan.out_dir / "tiny.json").read_text())["results"]["n"] == 2
    assert execute.plan_run("tiny", {"n": 2}, root=book).up_to_date


# --------------------------------------------------------------------------- module layout
def test_the_book_machinery_imports_only_the_standard_library():
    """lantk.book, lantk.results, lantk.runner and lantk._io import nothing outside the
    standard library (the CLI starts fast and works without the book extra); lantk's own
    __init__ (JAX) is stubbed out."""
    code = textwrap.dedent(f"""\
        import sys, types
        pkg = types.ModuleType("lantk")
        pkg.__path__ = [{str(Path(runner.__file__).parent)!r}]
        pkg.__version__ = "0"
        sys.modules["lantk"] = pkg
        before = set(sys.modules)
        import lantk._io, lantk.book, lantk.results, lantk.runner
        new = {{m.split(".")[0] for m in set(sys.modules) - before}}
        print(sorted(new - set(sys.stdlib_module_names) - {{"lantk"}}))
        """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.strip() == "[]"


def test_runner_re_exports_what_chapters_call():
    from lantk.book import stats

    for name in ("save_results", "save_table", "save_figure", "load_results", "device_info",
                 "versions"):
        assert getattr(runner, name) is getattr(results, name), name
    for name in ("default_runs_dir", "execution_rows", "execution_table"):
        assert getattr(runner, name) is getattr(stats, name), name
    assert runner.run_chapter is execute.run_chapter and results.save_json is results.save_results
    for name in runner.__all__:
        assert hasattr(runner, name), name


def test_atomic_write_follows_the_umask_and_leaves_nothing_on_failure(tmp_path):
    import os
    import stat

    from lantk._io import atomic_write

    old = os.umask(0o027)
    try:
        path = atomic_write(tmp_path / "new" / "a.bin", b"one")
    finally:
        os.umask(old)
    assert path.read_bytes() == b"one" and stat.S_IMODE(path.stat().st_mode) == 0o640
    atomic_write(path, lambda f: f.write(b"two"))
    assert path.read_bytes() == b"two"

    def broken(f):
        f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, broken)
    assert path.read_bytes() == b"two" and sorted(os.listdir(path.parent)) == ["a.bin"]


@pytest.mark.parametrize("annotation, expected", [
    ("int | None", (int, type(None))), ("Optional[int]", (int, type(None))),
    ("typing.Optional[float]", (float, type(None))), ("Union[int, str]", (int, str)),
    ('"Optional[int]"', (int, type(None))), ("'int | None'", (int, type(None))),
    ("list[int] | None", (list, type(None))), ("list", (list,)), ("None | str", (type(None), str)),
])
def test_annotations_of_every_spelling_declare_types(tmp_path, annotation, expected):
    src = tmp_path / "c.md"
    src.write_text(TINY.replace("fail = False\n", f"fail = False\nsize: {annotation} = None\n"))
    assert runner.parameter_types(src)["size"] == expected


@pytest.mark.parametrize("annotation", ["np.ndarray", "Callable[[int], int]", "int | Foo",
                                        "Optional[Foo]"])
def test_annotations_naming_other_types_declare_nothing(tmp_path, annotation):
    src = tmp_path / "c.md"
    src.write_text(TINY.replace("fail = False\n", f"fail = False\nsize: {annotation} = None\n"))
    assert "size" not in runner.parameter_types(src)


def test_chapters_share_a_jax_compilation_cache_under_runs(book, monkeypatch):
    """The kernel runs with JAX's persistent compilation cache in runs/.jax-cache (with a size
    limit, so that JAX locks it for the worker processes that share it); the runner's own
    environment is left as it was, and a user's own cache folder wins."""
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    (book / "book" / "tiny.md").write_text(TINY.replace(
        'print("n squared:", n * n)',
        'import jax\n'
        'jax.jit(lambda x: x * n)(2.0).block_until_ready()\n'
        'runner.save_results("env", {k: os.environ.get(k) for k in ("JAX_COMPILATION_CACHE_DIR",'
        ' "JAX_COMPILATION_CACHE_MAX_SIZE")}, output_dir)'))
    res = runner.run_chapter("tiny", {}, root=book, progress=False, quiet=True)
    env = json.loads((res.out_dir / "env.json").read_text())["results"]
    cache = book / "runs" / execute.COMPILE_CACHE
    assert env == {"JAX_COMPILATION_CACHE_DIR": str(cache),
                   "JAX_COMPILATION_CACHE_MAX_SIZE": str(execute.COMPILE_CACHE_BYTES)}
    assert any(p.name.endswith("-cache") for p in cache.iterdir())
    assert "JAX_COMPILATION_CACHE_DIR" not in os.environ
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(book / "mine"))
    res = runner.run_chapter("tiny", {"n": 5}, root=book, progress=False, quiet=True)
    env = json.loads((res.out_dir / "env.json").read_text())["results"]
    assert env["JAX_COMPILATION_CACHE_DIR"] == str(book / "mine")
    assert env["JAX_COMPILATION_CACHE_MAX_SIZE"] is None
