"""lantk.claims: invariants that fail the run, the paper's claims with verdicts, the claims page."""

import json
import textwrap

import numpy as np
import pytest
from conftest import MYST_HEADER

from lantk import claims, cli, runner


# --------------------------------------------------------------------------- check
def test_a_true_claim_prints_its_evidence_rounded(capsys):
    claims.check("the slope is about -1/2", True, slope=-0.498765, n=7)
    assert capsys.readouterr().out == "claim: the slope is about -1/2 [slope=-0.499, n=7]\n"


def test_a_false_claim_raises_naming_the_statement_and_evidence():
    with pytest.raises(claims.ClaimFailed, match=r"claim failed: oracle beats the NTK \[gap=-0.0123\]"):
        claims.check("oracle beats the NTK", False, gap=-0.012345)


def test_numpy_booleans_are_accepted_and_non_booleans_refused():
    claims.check("numpy true", np.float64(1.0) > 0)
    with pytest.raises(claims.ClaimFailed):
        claims.check("numpy false", np.array(1.0) < 0)
    with pytest.raises(TypeError, match="must be a bool"):
        claims.check("an array hides the test", np.array([True, False]))
    with pytest.raises(TypeError, match="must be a bool"):
        claims.check("a number is not a verdict", 1)
    with pytest.raises(ValueError, match="statement"):
        claims.check("  ", True)


def test_checks_are_recorded_in_the_run_folder_once_per_statement(tmp_path, monkeypatch):
    monkeypatch.setenv(claims.RUN_DIR_ENV, str(tmp_path))
    claims.check("a", True, x=1.0)
    claims.check("a", True, x=2.0)  # re-executing a cell replaces its record
    with pytest.raises(claims.ClaimFailed):
        claims.check("b", False, y=float("nan"))
    entries = json.loads((tmp_path / claims.CLAIMS_FILE).read_text())
    assert [(e["statement"], e["holds"], e["evidence"]) for e in entries] == [
        ("a", True, {"x": 2.0}), ("b", False, {"y": None})]


def test_nothing_is_written_outside_a_run(tmp_path, monkeypatch):
    monkeypatch.delenv(claims.RUN_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    claims.check("no run folder", True)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- verdicts
@pytest.mark.parametrize("est, low, high, expected", [
    (0.02, 0.001, 0.04, claims.REPRODUCED),
    (-0.02, -0.04, -0.001, claims.NOT_REPRODUCED),
    (0.01, -0.01, 0.03, claims.INCONCLUSIVE),
    (0.0, 0.0, 0.0, claims.INCONCLUSIVE),   # a zero-width interval at zero decides nothing
    (0.01, 0.0, 0.02, claims.INCONCLUSIVE),
])
def test_decide_from_the_interval_alone(est, low, high, expected):
    assert claims.decide(est, low, high) == expected


def test_decide_refuses_inconsistent_or_missing_intervals():
    with pytest.raises(ValueError, match="outside its interval"):
        claims.decide(0.5, 0.0, 0.1)
    with pytest.raises(ValueError, match="finite"):
        claims.decide(float("nan"), 0.0, 0.1)


def test_verdict_records_and_returns(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(claims.RUN_DIR_ENV, str(tmp_path))
    v = claims.verdict("hr-beats-cntk", 0.012, 0.004, 0.02, scale="CIFAR-10, 2 pairs",
                       subject="FJLT-V1", n=400)
    assert v == claims.REPRODUCED
    assert "-> reproduced" in capsys.readouterr().out
    v = claims.verdict("hr-beats-cntk", 0.012, 0.004, 0.02, scale="digits", subject="KR-V1",
                       testable=False)
    assert v == claims.NOT_TESTABLE
    entries = json.loads((tmp_path / claims.CLAIMS_FILE).read_text())
    assert [(e["subject"], e["verdict"]) for e in entries] == [
        ("FJLT-V1", claims.REPRODUCED), ("KR-V1", claims.NOT_TESTABLE)]
    with pytest.raises(KeyError, match="unknown paper claim"):
        claims.verdict("no-such-claim", 0.0, -1.0, 1.0, scale="")


def test_claims_table_lists_every_claim_and_marks_untested_ones(tmp_path, monkeypatch):
    run = tmp_path / "generalisation" / "default"
    run.mkdir(parents=True)
    monkeypatch.setenv(claims.RUN_DIR_ENV, str(run))
    claims.verdict("fjlt-beats-kr", -0.03, -0.05, -0.01, scale="s", subject="FJLT-V1 - KR-V1")
    claims.check("an invariant", True)
    table = claims.claims_table(tmp_path)
    assert set(table["claim"]) == {c.statement for c in claims.PAPER_CLAIMS.values()}
    row = table[table["subject"] == "FJLT-V1 - KR-V1"].iloc[0]
    assert (row["verdict"], row["chapter"]) == (claims.NOT_REPRODUCED, "generalisation")
    assert (table["verdict"] == "not run").sum() == len(claims.PAPER_CLAIMS) - 1
    inv = claims.invariants_table(tmp_path)
    assert inv.to_dict("records") == [{"chapter": "generalisation", "checked": 1, "held": 1}]
    assert "\\|" in claims.markdown(table.assign(claim="a | b"))


def test_every_paper_claim_names_a_chapter_of_the_book():
    chapters = {p.split("/")[-1] for p in runner.toc_chapters(runner.find_root())}
    for c in claims.PAPER_CLAIMS.values():
        assert c.chapter in chapters, c


# --------------------------------------------------------------------------- in a run
CHAPTER = MYST_HEADER + textwrap.dedent('''\

    # Claims

    ```{code-cell} ipython3
    :tags: [parameters]

    profile = "smoke"
    gap = 0.25
    output_dir = "."
    ```

    ```{code-cell} ipython3
    from lantk import claims
    claims.check("the oracle is at least as accurate as the NTK", gap >= 0, gap=gap)
    ```
    ''')


@pytest.fixture
def claims_book(tmp_path):
    (tmp_path / "book").mkdir()
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/ch\n")
    (tmp_path / "book" / "ch.md").write_text(CHAPTER)
    return tmp_path


def test_a_false_claim_fails_lantk_run_and_lantk_book_naming_it(claims_book, capsys):
    res = runner.run_chapter("ch", {}, root=claims_book, quiet=True, progress=False)
    out = res.out_dir
    entries = json.loads((out / claims.CLAIMS_FILE).read_text())
    assert entries[0]["holds"] is True and entries[0]["evidence"] == {"gap": 0.25}

    rc = cli.main(["run", "ch", "--root", str(claims_book), "-p", "gap", "-0.5",
                   "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "a claim of the chapter is false" in err
    assert "the oracle is at least as accurate as the NTK [gap=-0.5]" in err
    # the failed run has its own folder, whose claims and record say it failed
    failed = out.parent / runner.run_slug({"gap": -0.5})
    entries = json.loads((failed / claims.CLAIMS_FILE).read_text())
    assert [e["holds"] for e in entries] == [False]
    assert runner.read_record(failed)["status"] == "failed"
    assert runner.read_record(out)["status"] == "ok"  # the default run is untouched

    (claims_book / "book" / "ch.md").write_text(CHAPTER.replace("gap = 0.25", "gap = -1.0"))
    with pytest.raises(runner.ChapterError, match="the oracle is at least as accurate"):
        runner.build_book("smoke", root=claims_book, build=False, quiet=True, progress=False)
