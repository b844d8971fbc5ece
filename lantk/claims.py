"""Claims the book makes, as checks that can fail, and the paper's claims with verdicts.

Two kinds of statement appear in the chapters:

* **Invariants** -- things that must hold whenever the code is right (``t = 0`` gives the NTK,
  the closed form equals the integrated dynamics, the oracle is at least as accurate as the
  NTK, ...). :func:`check` prints the statement with the numbers behind it and raises
  :class:`ClaimFailed` when it is false, so the cell fails and with it ``lantk run`` and
  ``make book``, the statement in the message.
* **The paper's claims** -- empirical statements of Chen, He & Su (2020) and the papers it
  builds on, which at this book's scale may or may not hold. :func:`verdict` turns an
  estimate with its interval into *reproduced*, *not reproduced* or *inconclusive at this
  scale* (or *not testable on the embedded data*) and records it; it never fails the build.
  The page "The paper's claims at this scale" lists them all (:func:`claims_table`).

Every record goes to ``claims.json`` in the run folder of the chapter: the folder named by
``$LANTK_RUN_DIR``, which ``lantk run`` sets for the kernel it starts. Outside a run (a
notebook opened by hand, nbval's re-execution) nothing is written; the checks still print and
still raise.

Example:
    >>> from lantk import claims
    >>> claims.check("two plus two is four", 2 + 2 == 4, total=2 + 2)
    claim: two plus two is four [total=4]
    >>> claims.decide(0.02, 0.005, 0.035)
    'reproduced'
    >>> claims.decide(0.01, -0.01, 0.03)
    'inconclusive at this scale'
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PAPER_CLAIMS", "ClaimFailed", "PaperClaim", "VERDICTS", "check", "claims_table",
           "decide", "invariants_table", "load_claims", "markdown", "verdict"]

CLAIMS_FILE = "claims.json"
RUN_DIR_ENV = "LANTK_RUN_DIR"

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive at this scale"
NOT_TESTABLE = "not testable on the embedded data"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_TESTABLE)


class ClaimFailed(AssertionError):
    """A statement the book makes is false for the numbers this build computed."""


@dataclass(frozen=True)
class PaperClaim:
    """A claim of the literature the book tests.

    ``statement`` is phrased so that a positive ``estimate`` goes the paper's way: the verdict
    is *reproduced* when the whole interval is above zero, *not reproduced* when it is below
    zero, *inconclusive at this scale* when it contains zero.
    """

    id: str
    statement: str
    quantity: str   # what the estimate measures (positive = the paper's direction)
    paper: str      # the paper's own number or finding, with its source
    chapter: str    # the chapter that tests it


PAPER_CLAIMS: dict[str, PaperClaim] = {c.id: c for c in (
    PaperClaim(
        "hr-beats-cntk",
        "LANTK-HR is more accurate than the CNTK on binary CIFAR-10 class pairs",
        "test accuracy of the LANTK-HR variant minus the CNTK's, pooled over class pairs",
        "LANTK-HR above the CNTK on the ten binary CIFAR-10 class pairs, with 10,000 training "
        "images per pair (Chen, He & Su 2020, Section 5)",
        "generalisation"),
    PaperClaim(
        "fjlt-beats-kr",
        "the FJLT variants of LANTK-HR are more accurate than the KR variants",
        "test accuracy of FJLT-Vk minus KR-Vk, pooled over class pairs",
        "the FJLT variants ahead of the KR variants on the binary CIFAR-10 pairs (Chen, He & Su "
        "2020, Section 5)",
        "generalisation"),
    PaperClaim(
        "cnn-beats-kernels",
        "the trained CNN is more accurate than the CNTK and than LANTK-HR",
        "test accuracy of the trained CNN minus the kernel's, pooled over class pairs",
        "the trained CNN stays above the kernels on the binary CIFAR-10 pairs: label awareness "
        "narrows the gap without closing it (Chen, He & Su 2020, Section 5)",
        "generalisation"),
    PaperClaim(
        "nth-beats-ntk",
        "LANTK-NTH is more accurate than the NTK of the two-layer network",
        "test accuracy of LANTK-NTH minus the NTK's, two-layer ReLU network, MNIST pairs",
        "LANTK-NTH above the NTK for the two-layer network (Chen, He & Su 2020, Section 5)",
        "generalisation"),
    PaperClaim(
        "hr-beats-ntk-pairs",
        "LANTK-HR is more accurate than the NTK of the two-layer network on CIFAR-10 class pairs",
        "test accuracy of the LANTK-HR variant minus the two-layer NTK's, pooled over the 45 "
        "class pairs",
        "LANTK-HR above the two-layer NTK on the CIFAR-10 class pairs (Chen, He & Su 2020, "
        "Section 5)",
        "pairs"),
    PaperClaim(
        "network-beats-ntk",
        "the trained two-layer network is more accurate than its NTK",
        "test accuracy of the trained two-layer ReLU network minus its NTK's, pooled over the "
        "45 CIFAR-10 class pairs",
        "trained networks generalise better than their NTK, the gap label awareness is meant to "
        "close (Chen, He & Su 2020, Section 1 and 5)",
        "pairs"),
    PaperClaim(
        "psd-repair-helps",
        "making K + λZ positive semi-definite (the positive part of Z) improves LANTK-HR",
        "test accuracy of the LANTK-HR variant with Z's positive part minus with Z as "
        "estimated, pooled over the class pairs",
        "not a claim of the paper, which uses Z as estimated; the book's question about its "
        "indefinite kernels",
        "pairs"),
    PaperClaim(
        "la-more-elastic",
        "label-aware kernels are more locally elastic than the NTK",
        "relative ratio R of the label-aware kernel minus the NTK's",
        "LANTKs have a higher relative ratio than the NTK, closer to trained networks (Chen, "
        "He & Su 2020, Section 5)",
        "elasticity"),
    PaperClaim(
        "training-more-elastic",
        "training makes the network's kernel more locally elastic",
        "relative ratio R of the trained network's empirical NTK minus R at initialisation",
        "networks become locally elastic as they train (He & Su 2020)",
        "elasticity"),
    PaperClaim(
        "network-follows-labels",
        "the trained network's kernel follows the label system it was trained on",
        "label gap (same-label minus different-label class-pair similarity) of the trained "
        "network's empirical NTK under the system it was trained on",
        "the kernel of a network trained under a label system separates the class pairs that "
        "system groups (Chen, He & Su 2020, Section 5, MSCOCO; here a CIFAR-10 analogue)",
        "elasticity"),
    PaperClaim(
        "trained-entk-beats-init",
        "kernel regression with the trained network's empirical NTK is more accurate than with "
        "its empirical NTK at initialisation",
        "test accuracy of kernel regression with the trained network's empirical NTK K_t minus "
        "with the same network's at initialisation K_0, same test points",
        "ntk_approx.py of the official code of Chen, He & Su (2020) runs kernel regression with "
        "a two-layer ReLU network's empirical NTK at initialisation and after 10 epochs of Adam "
        "(width 40,960, each binary CIFAR-10 pair), with the relative ratios of both: the "
        "trained network's kernel, grown label-aware, is what the NTK lacks",
        "elasticity"),
    PaperClaim(
        "trained-entk-beats-ntk",
        "kernel regression with the trained network's empirical NTK is more accurate than with "
        "the infinite-width NTK",
        "test accuracy of kernel regression with the trained network's empirical NTK K_t minus "
        "the NTK's, same test points",
        "the kernel of a trained network generalises better than the NTK, whose lack of label "
        "awareness LANTK repairs (Chen, He & Su 2020, Section 1; ntk_approx.py of their code)",
        "elasticity"),
    PaperClaim(
        "cntk-v-beats-cnn-v",
        "the CNTK-V is more accurate than the trained CNN-V of the same depth",
        "test accuracy of the CNTK-V minus the trained CNN-V's, ten CIFAR-10 classes",
        "CNTK-V above CNN-V at depths 3 to 6 on CIFAR-10 (Arora et al. 2019, Table 1)",
        "intro"),
)}


def _round(v, digits: int = 3):
    """Evidence for printing and recording: floats to ``digits`` significant figures."""
    if isinstance(v, bool) or v is None or isinstance(v, (int, str)):
        return v
    if hasattr(v, "item") and getattr(v, "ndim", 1) == 0:
        return _round(v.item(), digits)
    if isinstance(v, float):
        if not math.isfinite(v) or v == 0:
            return None if not math.isfinite(v) else 0.0
        return float(f"{v:.{digits}g}")
    if isinstance(v, (list, tuple)) or hasattr(v, "tolist"):
        return [_round(x, digits) for x in (v.tolist() if hasattr(v, "tolist") else v)]
    if isinstance(v, dict):
        return {str(k): _round(x, digits) for k, x in v.items()}
    return str(v)


def _format(evidence: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in evidence.items())


def _record(entry: dict) -> None:
    run_dir = os.environ.get(RUN_DIR_ENV)
    if not run_dir:
        return
    from lantk._io import atomic_write

    path = Path(run_dir) / CLAIMS_FILE
    try:
        entries = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        entries = []
    entries = [e for e in entries if not (e.get("kind") == entry["kind"]
                                          and e.get("key") == entry["key"])]
    entries.append(entry)
    atomic_write(path, json.dumps(entries, indent=2) + "\n")


def check(statement: str, holds, **evidence) -> None:
    """State an invariant of the book: print it with its evidence, record it, fail if false.

    Args:
        statement: the claim as the chapter makes it ("t = 0 gives the NTK").
        holds: whether it holds for the numbers computed (a bool, or a NumPy bool).
        **evidence: the numbers behind it (floats are shown and recorded to three
            significant figures, so the printed line is reproducible).

    Raises:
        ClaimFailed: ``holds`` is false; the message names the statement and the evidence.
        TypeError: ``holds`` is not a boolean (a number or an array would hide the test).
    """
    if not isinstance(statement, str) or not statement.strip():
        raise ValueError("a claim needs a non-empty statement")
    if hasattr(holds, "dtype") and getattr(holds, "ndim", 1) == 0 and holds.dtype == bool:
        holds = bool(holds)
    if not isinstance(holds, bool):
        raise TypeError(f"claims.check({statement!r}): holds must be a bool, got "
                        f"{type(holds).__name__} (use .all() / .any() for arrays)")
    ev = _round(evidence)
    _record({"kind": "check", "key": statement, "statement": statement, "holds": holds,
             "evidence": ev})
    if not holds:
        raise ClaimFailed(f"claim failed: {statement} [{_format(ev)}]")
    print(f"claim: {statement}" + (f" [{_format(ev)}]" if ev else ""))


def decide(estimate: float, low: float, high: float) -> str:
    """The verdict of an interval for a claim whose direction is positive."""
    values = [float(estimate), float(low), float(high)]
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"an estimate and its interval must be finite, got {values}")
    if not low <= estimate <= high:
        raise ValueError(f"the estimate {estimate} lies outside its interval [{low}, {high}]")
    if low > 0:
        return REPRODUCED
    if high < 0:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def verdict(claim_id: str, estimate: float, low: float, high: float, *, scale: str,
            subject: str = "", testable: bool = True, **evidence) -> str:
    """Record this build's test of one of the paper's claims and return its verdict.

    Args:
        claim_id: a key of :data:`PAPER_CLAIMS`.
        estimate, low, high: the estimate of the claim's quantity and its interval (95 %
            unless the evidence says otherwise); positive means the paper's direction.
        scale: the data and sizes behind it ("CIFAR-10, 10 pairs, ~930 training images").
        subject: which method or kernel, when the claim is tested for several ("FJLT-V1").
        testable: false when the data cannot test it (the embedded digits): the verdict is
            then *not testable on the embedded data*.
        **evidence: further numbers to record.

    Returns:
        One of :data:`VERDICTS`; write the chapter's interpretation conditionally on it.
    """
    if claim_id not in PAPER_CLAIMS:
        raise KeyError(f"unknown paper claim {claim_id!r}; known: {', '.join(PAPER_CLAIMS)}")
    decided = decide(estimate, low, high)
    v = decided if testable else NOT_TESTABLE
    claim = PAPER_CLAIMS[claim_id]
    _record({"kind": "paper", "key": f"{claim_id}|{subject}", "claim": claim_id,
             "subject": subject, "statement": claim.statement, "estimate": _round(estimate),
             "low": _round(low), "high": _round(high), "scale": scale, "verdict": v,
             "evidence": _round(evidence)})
    what = f"{claim.statement}" + (f" ({subject})" if subject else "")
    print(f"paper claim: {what}: {_round(estimate)} [{_round(low)}, {_round(high)}] -> {v}")
    return v


def load_claims(runs_dir) -> list[dict]:
    """Every record of the chapters' default runs under ``runs_dir`` (``runs/<profile>``:
    ``<chapter>/default/claims.json``), each with its ``chapter``."""
    from lantk.book.records import DEFAULT_RUN

    out = []
    for path in sorted(Path(runs_dir).glob(f"*/{DEFAULT_RUN}/{CLAIMS_FILE}")):
        try:
            entries = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON ({e}); rerun its chapter") from None
        for e in entries:
            out.append({"chapter": path.parent.parent.name, **e})
    return out


def claims_table(runs_dir):
    """The paper's claims with this build's verdicts, one row per claim and subject.

    A listed claim that no run tested gets the verdict ``"not run"`` (the claims page fails
    its own check on that).
    """
    import pandas as pd

    recorded = [e for e in load_claims(runs_dir) if e.get("kind") == "paper"]
    rows = []
    for cid, claim in PAPER_CLAIMS.items():
        mine = [e for e in recorded if e["claim"] == cid]
        for e in mine or [None]:
            rows.append({
                "claim": claim.statement,
                "subject": e["subject"] if e else "",
                "paper": claim.paper,
                "this build": (f"{e['estimate']:+.3g} [{e['low']:+.3g}, {e['high']:+.3g}]"
                               if e else ""),
                "quantity": claim.quantity,
                "scale": e["scale"] if e else "",
                "chapter": e["chapter"] if e else claim.chapter,
                "verdict": e["verdict"] if e else "not run",
            })
    return pd.DataFrame(rows)


def invariants_table(runs_dir, exclude=("claims",)):
    """The invariants the chapters checked in this build: one row per chapter, with how many
    were checked and how many held (a false one fails its chapter, so all hold in a build).
    The claims page itself (``exclude``) is left out."""
    import pandas as pd

    rows: dict = {}
    for e in load_claims(runs_dir):
        if e.get("kind") != "check" or e["chapter"] in exclude:
            continue
        r = rows.setdefault(e["chapter"], {"chapter": e["chapter"], "checked": 0, "held": 0})
        r["checked"] += 1
        r["held"] += bool(e["holds"])
    return pd.DataFrame(list(rows.values()), columns=["chapter", "checked", "held"])


def markdown(df) -> str:
    """A DataFrame as a Markdown table (``|`` in cells escaped) for ``IPython.display``."""
    if len(df) == 0:
        return "*Nothing is recorded yet.*"
    cols = [str(c) for c in df.columns]

    def cell(v):
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |"
              for row in df.itertuples(index=False)]
    return "\n".join(lines)
