"""The book's three profiles and each chapter's configuration (one frozen dataclass per chapter).

A *profile* names a scale, not a machine:

* ``smoke`` -- what CI executes: every code path of every chapter, in minutes, on the
  embedded digits or small slices of the real data. Its numbers show that the code runs,
  not what the paper claims.
* ``default`` -- what ``make book`` runs: the largest scale the 2-core reference CPU
  finishes in about 30 minutes for the whole book with the shared CIFAR-10 / MNIST copies
  (``LANTK_DATA_DIR``). Without them it falls back to the embedded digits and says so.
* ``paper`` -- the paper's scale, for a GPU and the full official datasets.

Each chapter's first code cell is one call, e.g. ::

    cfg = profiles.LantkHR.resolve(profile, n_train=n_train, n_test=n_test)
    cfg.show()

``resolve`` takes the profile's preset, applies the overrides that are not ``None`` (a
chapter parameter left at ``None`` means "the profile's value"; 0 is a value, never
replaced), chooses the dataset (a preset such as ``"mnist"`` falls back to the embedded
``"digits"`` when its files are not under the data root) and caps every size at what the
data found actually hold, recording each change in ``notes``. The presets are written for
the full datasets, so ``paper`` with the full datasets asks for the paper's sizes.

This module imports only the standard library at the top (``lantk.runner`` imports it for
the profile names).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar

PROFILES = ("smoke", "default", "paper")
DEFAULT_PROFILE = "default"
PROFILE_HELP = ("smoke: every code path in minutes (what CI runs); default: the largest scale a "
                "2-core CPU finishes in about 30 minutes for the whole book; paper: full scale, "
                "for a GPU and the full datasets")
EMBEDDED = "digits"

__all__ = ["DEFAULT_PROFILE", "PROFILES", "ChapterConfig", "check_profile", "CONFIGS"]


def check_profile(profile) -> str:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    return profile


@dataclass(frozen=True)
class ChapterConfig:
    """Base of the per-chapter configurations. Subclasses declare their fields (with types:
    ``lantk run`` checks ``-p`` values against them) and ``PRESETS``: profile -> values."""

    profile: str = DEFAULT_PROFILE
    dataset: str = EMBEDDED
    notes: tuple = field(default=(), compare=False)
    fallbacks: tuple = field(default=(), compare=False)  # datasets wanted but not found

    PRESETS: ClassVar[dict] = {}
    CHAPTER: ClassVar[str] = ""
    FALLBACK: ClassVar = None  # settings on the embedded digits (None: the smoke preset's)
    # further dataset fields: field -> (its settings on the embedded digits, the note's start)
    EXTRA_DATASETS: ClassVar[dict] = {}
    WHY: ClassVar[str] = ("On the 8×8 digits the kernels are at or near their ceiling, so the "
                          "differences between methods this chapter measures are too small to "
                          "tell from noise.")

    @classmethod
    def fields(cls) -> dict:
        """Field name -> annotation string, without the bookkeeping fields."""
        return {f.name: f.type for f in dataclasses.fields(cls)
                if f.name not in ("notes", "fallbacks")}

    @classmethod
    def resolve(cls, profile: str, **overrides):
        """The configuration of ``profile`` with ``overrides`` (``None`` = keep the preset),
        the dataset chosen and the sizes capped at what the data hold."""
        check_profile(profile)
        names = set(cls.fields())
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ValueError(f"{cls.__name__} has no setting {', '.join(unknown)}; "
                             f"settings: {', '.join(sorted(names - {'profile'}))}")
        given = {k: v for k, v in overrides.items() if v is not None}
        values = {**cls.PRESETS[profile], **given, "profile": profile}
        notes, missing = [], []
        sections = {"dataset": (cls.fallback(), "on the embedded digits this chapter uses its "
                                                "fallback settings: "),
                    **cls.EXTRA_DATASETS}
        for key, (fallback, says) in sections.items():
            preferred = values.get(key, getattr(cls, key))
            values[key] = _choose(preferred, key in given, notes)
            if values[key] == preferred:
                continue
            missing.append(preferred)   # the embedded fallback has its own sizes
            fallback = {k: v for k, v in fallback.items() if k not in given}
            values.update(fallback)
            if fallback:
                notes.append(says + ", ".join(f"{k} = {_fmt(v)}" for k, v in fallback.items()))
        cfg = cls(**values, fallbacks=tuple(dict.fromkeys(missing)))
        return cfg._capped(notes)

    def _capped(self, notes: list):
        """Subclasses cap their sizes here (see :func:`cap_balanced`)."""
        return dataclasses.replace(self, notes=tuple(notes))

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def asdict(self) -> dict:
        d = dataclasses.asdict(self)
        d["notes"] = list(self.notes)
        del d["fallbacks"]   # recorded as fell_back where it is saved
        return d

    def table(self):
        """The resolved configuration as a two-column DataFrame (setting, value)."""
        import pandas as pd

        rows = [(k, _fmt(v)) for k, v in self.asdict().items() if k != "notes"]
        return pd.DataFrame(rows, columns=["setting", "value"])

    @property
    def fell_back(self) -> list:
        """The datasets this run wanted but did not find (it used the embedded digits)."""
        return list(self.fallbacks)

    def notice(self) -> str | None:
        """The warning a rendered page shows when the run fell back to the embedded digits:
        which data it ran on, why its comparisons cannot answer the chapter's question, and
        the command that gets the real data (``None`` when nothing fell back)."""
        missing = self.fell_back
        if not missing:
            return None
        fetch = " and ".join(f"`lantk data fetch {m}`" for m in missing)
        return (f"**This page ran on the embedded 8×8 digits**, not on {' and '.join(missing)} "
                f"(not found under the data root). {self.WHY} Its paper claims are marked *not "
                f"testable on the embedded data* on the claims page. To run it on the real "
                f"data: {fetch} (or point `LANTK_DATA_DIR` at a folder holding them), then "
                f"`make book` again.")

    def show(self, output_dir=None):
        """Display the fallback notice (a warning admonition, when the run fell back to the
        embedded digits), the table and the notes of what ``resolve`` changed; with
        ``output_dir``, also record the resolved configuration there (``config.json``, with
        the run's results)."""
        if output_dir is not None:
            from lantk import results

            results.save_results("config", {**self.asdict(), "chapter": self.CHAPTER,
                                            "fell_back": self.fell_back}, output_dir)
        import html as _html
        import re

        from IPython.display import HTML, Markdown, display

        text = self.notice()
        if text:
            body = _html.escape(text)
            body = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", body)
            body = re.sub(r"`(.+?)`", r"<code>\1</code>", body)
            body = re.sub(r"\*(.+?)\*", r"<em>\1</em>", body)
            display(HTML('<div class="admonition warning lantk-fallback">'
                         '<p class="admonition-title">Embedded data: not the chapter\'s '
                         f'question</p><p>{body}</p></div>'))
        display(self.table().style.hide(axis="index"))
        if self.notes:
            display(Markdown("\n".join(f"- {n}" for n in self.notes)))
        return None

    @classmethod
    def fallback(cls) -> dict:
        """Settings used when the preferred dataset is not found (default: the smoke
        profile's, which are sized for the embedded digits)."""
        if cls.FALLBACK is not None:
            return dict(cls.FALLBACK)
        return {k: v for k, v in cls.PRESETS.get("smoke", {}).items() if k != "dataset"}

    @property
    def real_data(self) -> bool:
        return self.dataset != EMBEDDED


def _fmt(v) -> str:
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt(x) for x in v) if v else "(none)"
    if isinstance(v, dict):
        return "; ".join(f"{k}: {_fmt(x)}" for k, x in v.items())
    return "every image" if v is None else str(v)


def _choose(preferred: str, explicit: bool, notes: list) -> str:
    from lantk import data

    data.check_dataset(preferred)
    if data.available(preferred):
        return preferred
    if explicit:
        raise FileNotFoundError(
            f"dataset {preferred!r} was asked for but its files are not under the data root "
            f"{data.data_root()} (set LANTK_DATA_DIR or run `lantk data fetch {preferred}`)")
    notes.append(f"{preferred} was not found under the data root ({data.data_root()}): this run "
                 f"uses the embedded 8x8 digits instead (`lantk data fetch {preferred}` gets the "
                 f"real data)")
    return EMBEDDED


def cap_balanced(dataset: str, classes, split: str, want, notes: list, what: str,
                 reserve: int = 0):
    """``want`` images of ``classes`` from ``split``, at most what a balanced draw can take
    (minus ``reserve`` already taken, e.g. validation images); ``None`` (every image) is
    kept. A cap is recorded in ``notes``."""
    from lantk import data

    if want is None:
        return None
    most = data.largest_balanced(dataset, classes, split) - reserve
    if most < 1:
        raise ValueError(f"{dataset} holds too few {split} images of classes {list(classes)} "
                         f"for {what}")
    if want > most:
        notes.append(f"{what}: {want} asked, {most} used (all that {dataset}'s {split} split "
                     f"holds for classes {list(classes)}, balanced)")
        return most
    return want


CONFIGS: dict = {}  # chapter name -> its ChapterConfig subclass


def _register(cls):
    CONFIGS[cls.CHAPTER] = cls
    missing = set(PROFILES) - set(cls.PRESETS)
    if missing:  # pragma: no cover - caught by the tests at import
        raise TypeError(f"{cls.__name__} lacks presets for {sorted(missing)}")
    return cls


@dataclass(frozen=True)
class BinaryTask(ChapterConfig):
    """A binary task on two classes: sizes per split, balanced (``None``: every image)."""

    classes: list = (8, 9)
    n_train: int = 100
    n_test: int = 80
    n_val: int = 0
    seed: int = 0

    def _capped(self, notes):
        c = list(self.classes)
        n_val = cap_balanced(self.dataset, c, "train", self.n_val, notes, "validation images") \
            if self.n_val else self.n_val
        n_train = cap_balanced(self.dataset, c, "train", self.n_train, notes, "training images",
                               reserve=n_val or 0)
        n_test = cap_balanced(self.dataset, c, "test", self.n_test, notes, "test images")
        return dataclasses.replace(self, classes=c, n_train=n_train, n_test=n_test, n_val=n_val,
                                   notes=tuple(notes))


@_register
@dataclass(frozen=True)
class NTK(BinaryTask):
    """``ntk``: the two-layer NTK against finite networks, and kernel regression."""

    CHAPTER: ClassVar[str] = "ntk"
    widths: list = (64, 256, 1024, 4096)
    seeds: int = 3
    PRESETS: ClassVar[dict] = {
        "smoke": dict(dataset="digits", n_train=200, n_test=80, widths=[64, 256, 1024, 4096]),
        "default": dict(dataset="mnist", n_train=1000, n_test=1000, widths=[64, 256, 1024, 4096]),
        "paper": dict(dataset="mnist", n_train=2000, n_test=1000,
                      widths=[64, 256, 1024, 4096, 16384]),
    }


@_register
@dataclass(frozen=True)
class LabelAwareness(BinaryTask):
    """``label_awareness``: the optimal kernel and the oracle term."""

    CHAPTER: ClassVar[str] = "label_awareness"
    PRESETS: ClassVar[dict] = {
        "smoke": dict(dataset="digits", n_train=40, n_test=80),
        "default": dict(dataset="mnist", n_train=1000, n_test=1000),
        "paper": dict(dataset="mnist", n_train=2000, n_test=1000),
    }


@_register
@dataclass(frozen=True)
class LantkHR(BinaryTask):
    """``lantk_hr``: the four LANTK-HR estimators on the two-layer NTK."""

    CHAPTER: ClassVar[str] = "lantk_hr"
    PRESETS: ClassVar[dict] = {
        "smoke": dict(dataset="digits", n_train=60, n_test=80, n_val=40),
        "default": dict(dataset="mnist", n_train=1000, n_test=1000, n_val=200),
        "paper": dict(dataset="mnist", n_train=2000, n_test=1000, n_val=200),
    }


@_register
@dataclass(frozen=True)
class LantkNTH(BinaryTask):
    """``lantk_nth``: the second-order NTH kernel and the drift of trained networks."""

    CHAPTER: ClassVar[str] = "lantk_nth"
    width: int = 256
    samples: int = 500
    drift_n: int = 16
    drift_widths: dict = field(default_factory=dict)
    drift_draws: dict = field(default_factory=dict)
    # the trained-network drift check runs on these images ("task": the chapter's task): its
    # RK4 training costs in proportion to the input dimension, 12x more on MNIST than digits
    drift_dataset: str = "task"
    PRESETS: ClassVar[dict] = {
        "smoke": dict(dataset="digits", n_train=100, n_test=80, samples=500, drift_n=16,
                      drift_widths={"standard": [64, 256, 1024],
                                    "antisymmetric": [64, 256, 1024, 4096]},
                      drift_draws={"standard": 96, "antisymmetric": 16}),
        "default": dict(dataset="mnist", n_train=1000, n_test=500, samples=500, drift_n=16,
                        drift_widths={"standard": [64, 256, 1024],
                                      "antisymmetric": [64, 256, 1024, 4096]},
                        drift_draws={"standard": 96, "antisymmetric": 16},
                        drift_dataset="digits"),
        "paper": dict(dataset="mnist", n_train=1000, n_test=500, samples=2000, drift_n=32,
                      drift_widths={"standard": [64, 256, 1024, 4096],
                                    "antisymmetric": [64, 256, 1024, 4096, 16384]},
                      drift_draws={"standard": 400, "antisymmetric": 100}),
    }


@_register
@dataclass(frozen=True)
class Outlook(BinaryTask):
    """``outlook``: LANTK-HR and LANTK-NTH side by side."""

    CHAPTER: ClassVar[str] = "outlook"
    width: int = 256
    samples: int = 500
    PRESETS: ClassVar[dict] = {
        "smoke": dict(dataset="digits", n_train=100, n_test=80, samples=500),
        "default": dict(dataset="mnist", n_train=1000, n_test=500, samples=500),
        "paper": dict(dataset="mnist", n_train=1000, n_test=500, samples=2000),
    }


@_register
@dataclass(frozen=True)
class Intro(ChapterConfig):
    """``intro``: the binary task of the book (embedded digits by default) and "the gap,
    measured": CNTK-V kernel regression against a trained CNN-V on ten classes."""

    CHAPTER: ClassVar[str] = "intro"
    WHY: ClassVar[str] = ("The gap between the CNTK-V and a trained CNN is a CIFAR-10 finding "
                          "(Arora et al.); on the digits both are near their ceiling.")
    classes: list = (3, 8)
    n_train: int = 200
    n_test: int = 80
    seed: int = 0
    motivation_dataset: str = "cifar10"
    motivation_n_train: int = 250
    motivation_n_test: int = 250
    depths: list = (3, 4, 6, 11)
    gap_depth: int = 0
    cnn_width: int = 32
    epochs: int = 20
    PRESETS: ClassVar[dict] = {
        "smoke": dict(dataset="digits", n_train=200, n_test=80, motivation_dataset="cifar10",
                      motivation_n_train=250, motivation_n_test=250, depths=[3, 4, 6, 11],
                      gap_depth=0, cnn_width=32, epochs=20),
        # Arora et al.'s CNTK-V-2K protocol: 2,000 training images, every test image
        "default": dict(dataset="digits", n_train=200, n_test=80, motivation_dataset="cifar10",
                        motivation_n_train=2000, motivation_n_test=None, depths=[3, 4],
                        gap_depth=0, cnn_width=32, epochs=20),
        "paper": dict(dataset="digits", n_train=None, n_test=None, motivation_dataset="cifar10",
                      motivation_n_train=2000, motivation_n_test=None, depths=[3, 4, 6, 11, 21],
                      gap_depth=6, cnn_width=128, epochs=40),
    }
    EXTRA_DATASETS: ClassVar[dict] = {"motivation_dataset": (
        dict(motivation_n_train=250, motivation_n_test=250),
        "the ten-class comparison on the embedded digits uses ")}

    @classmethod
    def fallback(cls) -> dict:  # the binary task is on the digits in every profile
        return {}

    def _capped(self, notes):
        c, mds, ten = list(self.classes), self.motivation_dataset, list(range(10))
        return dataclasses.replace(
            self, classes=c,
            n_train=cap_balanced(self.dataset, c, "train", self.n_train, notes, "training images"),
            n_test=cap_balanced(self.dataset, c, "test", self.n_test, notes, "test images"),
            motivation_n_train=cap_balanced(mds, ten, "train", self.motivation_n_train, notes,
                                            "ten-class training images"),
            motivation_n_test=cap_balanced(mds, ten, "test", self.motivation_n_test, notes,
                                           "ten-class test images"),
            notes=tuple(notes))


PAPER_PAIRS = [(3, 5), (2, 4), (2, 3), (1, 9), (2, 5), (4, 5), (3, 4), (3, 6), (4, 6), (2, 6)]
"""The ten CIFAR-10 class pairs of the paper's Table 1 (class indices)."""
MNIST_PAIRS = [(4, 9), (3, 5), (7, 9), (3, 8), (2, 7)]

CNN_AUGMENTS = ("none", "flip", "flip+shift")
"""``Generalisation.cnn_augment``: the trained CNN's augmentation (``lantk.train.fit``)."""
CNN_MONITORS = ("accuracy", "loss")
"""``Generalisation.cnn_monitor``: what the CNN's stopping rule watches on the validation split
(``lantk.train.fit``'s ``monitor``)."""
EPOCHS_AUG, PATIENCE_AUG = 60, 10


@_register
@dataclass(frozen=True)
class Generalisation(ChapterConfig):
    """``generalisation``: CIFAR-10 class pairs (CNTK, LANTK-HR, oracle, trained CNN), ten
    classes (``mc_*``) and two-layer networks on MNIST pairs (``mnist_*``)."""

    CHAPTER: ClassVar[str] = "generalisation"
    WHY: ClassVar[str] = ("The paper's comparisons are on CIFAR-10 class pairs and MNIST; on "
                          "the digits the CNTK and every LANTK variant score close to 1, so no "
                          "comparison here can show what the chapter is about. The fallback "
                          "takes few training images per pair so the kernels are not all at "
                          "their ceiling; it still says nothing about CIFAR-10.")
    pairs: list = field(default_factory=lambda: [list(p) for p in PAPER_PAIRS[:2]])
    n_train: int = 160
    n_val: int = 80
    n_test: int = 80
    seeds: list = (0, 1)
    epochs: int = 4
    patience: int = 5
    cnn_k: int = 4
    cnn_lr: float = 3e-4
    cnn_batch_size: int = 128
    cnn_augment: str = "none"
    cnn_monitor: str = "accuracy"
    folds: int = 1
    mc_n_train: int = 250
    mc_n_val: int = 100
    mc_n_test: int = 200
    mc_epochs: int = 3
    mnist_dataset: str = "mnist"
    mnist_pairs: list = field(default_factory=lambda: [list(p) for p in MNIST_PAIRS[:2]])
    mnist_n_train: int = 200
    mnist_n_val: int = 100
    mnist_n_test: int = 200
    mnist_seeds: list = (0,)
    widths: list = (256, 1024, 4096)
    nth_samples: int = 1000
    nth_inits: list = ("antisymmetric",)
    net_epochs: int = 50
    PRESETS: ClassVar[dict] = {
        "smoke": dict(dataset="cifar10", pairs=[list(p) for p in PAPER_PAIRS[:2]], n_train=160,
                      n_val=80, n_test=80, seeds=[0], epochs=4, patience=None, cnn_k=4,
                      folds=4, mc_n_train=250, mc_n_val=100, mc_n_test=200, mc_epochs=3,
                      mnist_dataset="mnist", mnist_pairs=[list(p) for p in MNIST_PAIRS[:2]],
                      mnist_n_train=200, mnist_n_val=100, mnist_n_test=200, mnist_seeds=[0],
                      widths=[256, 1024, 4096], nth_samples=1000,
                      nth_inits=["antisymmetric", "standard"], net_epochs=50),
        # every training image of each pair (validation carved from it) and every test image;
        # the trained CNN is paper_cnn(1) (16/32/64 channels): paper_cnn(4) is 6x slower here;
        # trained on flipped and shifted images (train.fit's augment)
        "default": dict(dataset="cifar10", pairs=[list(p) for p in PAPER_PAIRS], n_train=None,
                        n_val=100, n_test=None, seeds=[0], epochs=EPOCHS_AUG, patience=PATIENCE_AUG,
                        cnn_k=1, cnn_lr=1e-3, cnn_batch_size=32, cnn_augment="flip+shift",
                        cnn_monitor="loss", folds=6,
                        mc_n_train=4000, mc_n_val=500, mc_n_test=None, mc_epochs=20,
                        mnist_dataset="mnist", mnist_pairs=[list(p) for p in MNIST_PAIRS],
                        mnist_n_train=1000, mnist_n_val=200, mnist_n_test=500, mnist_seeds=[0],
                        widths=[256, 1024, 4096], nth_samples=500,
                        nth_inits=["antisymmetric", "standard"], net_epochs=50),
        "paper": dict(dataset="cifar10", pairs=[list(p) for p in PAPER_PAIRS], n_train=None,
                      n_val=None, n_test=None, seeds=[0, 1, 2], epochs=100, patience=10, cnn_k=4,
                      mc_n_train=None, mc_n_val=1000, mc_n_test=None, mc_epochs=100,
                      mnist_dataset="mnist", mnist_pairs=[list(p) for p in MNIST_PAIRS],
                      mnist_n_train=1000, mnist_n_val=500, mnist_n_test=1000,
                      mnist_seeds=[0, 1, 2], widths=[256, 1024, 4096, 16384], nth_samples=4000,
                      nth_inits=["antisymmetric", "standard"], net_epochs=200),
    }
    # the embedded digits: often-confused digit pairs and few training images, so that the
    # kernels are not all at their ceiling (the paper's pairs are easy digit pairs)
    FALLBACK: ClassVar[dict] = dict(pairs=[[3, 5], [4, 9], [7, 9], [3, 8], [1, 7], [5, 8],
                                           [8, 9], [1, 8], [2, 3], [5, 9]],
                                    n_train=30, n_val=20, n_test=None, mc_n_train=200,
                                    mc_n_val=100, mc_n_test=None, cnn_augment="none", folds=1)
    EXTRA_DATASETS: ClassVar[dict] = {"mnist_dataset": (
        dict(mnist_n_train=160, mnist_n_val=60, mnist_n_test=80),
        "the two-layer section on the embedded digits uses ")}

    def _capped(self, notes):
        from lantk import data

        if self.cnn_augment not in CNN_AUGMENTS:
            raise ValueError(f"cnn_augment must be one of {CNN_AUGMENTS}, got "
                             f"{self.cnn_augment!r}")
        if self.cnn_monitor not in CNN_MONITORS:
            raise ValueError(f"cnn_monitor must be one of {CNN_MONITORS}, got "
                             f"{self.cnn_monitor!r}")
        if isinstance(self.folds, bool) or not isinstance(self.folds, int) or self.folds < 1:
            raise ValueError(f"folds must be a positive integer (1: the official test split "
                             f"alone), got {self.folds!r}")
        if self.folds > 1 and len(self.seeds) > 1 and self.n_train is not None:
            raise ValueError("folds > 1 with several seeds needs n_train=None (every training "
                             "image), so that every seed's folds test the same images")
        ds = self.dataset
        n_val, n_train, n_test = self.n_val, self.n_train, self.n_test
        if n_val is None:  # a tenth of the smallest pair's training images validates c
            y = data.load(ds, "train")[1]
            n_val = int(0.1 * min(sum(int((y == c).sum()) for c in p) for p in self.pairs))
        for p in self.pairs:
            n_val = cap_balanced(ds, p, "train", n_val, notes, f"validation images of pair {p}")
        for p in self.pairs:
            n_train = cap_balanced(ds, p, "train", n_train, notes, f"training images of pair {p}",
                                   reserve=n_val)
            n_test = cap_balanced(ds, p, "test", n_test, notes, f"test images of pair {p}")
        ten = list(range(10))
        mc_val = cap_balanced(ds, ten, "train", self.mc_n_val, notes, "ten-class validation images")
        mc_train = cap_balanced(ds, ten, "train", self.mc_n_train, notes,
                                "ten-class training images", reserve=mc_val or 0)
        mc_test = cap_balanced(ds, ten, "test", self.mc_n_test, notes, "ten-class test images")
        mds, pairs2 = self.mnist_dataset, self.mnist_pairs
        v = self.mnist_n_val
        if v:
            v = min(cap_balanced(mds, p, "train", v, notes,
                                 f"two-layer validation images of pair {p}") for p in pairs2)
        tr, te = self.mnist_n_train, self.mnist_n_test
        for p in pairs2:
            tr = cap_balanced(mds, p, "train", tr, notes, f"two-layer training images of pair {p}",
                              reserve=v or 0)
            te = cap_balanced(mds, p, "test", te, notes, f"two-layer test images of pair {p}")
        return dataclasses.replace(self, n_val=n_val, n_train=n_train, n_test=n_test,
                                   mc_n_val=mc_val, mc_n_train=mc_train, mc_n_test=mc_test,
                                   mnist_n_val=v, mnist_n_train=tr, mnist_n_test=te,
                                   pairs=[list(p) for p in self.pairs],
                                   mnist_pairs=[list(p) for p in pairs2], notes=tuple(notes))


@_register
@dataclass(frozen=True)
class Elasticity(ChapterConfig):
    """``elasticity``: relative ratios on a class pair and two label systems on four classes."""

    CHAPTER: ClassVar[str] = "elasticity"
    WHY: ClassVar[str] = ("The paper measures local elasticity on CIFAR-10 classes (automobile, "
                          "cat, dog, truck); the digits stand in for them here, so the ratios "
                          "show the method, not the paper's finding.")
    classes: list = (1, 3)
    systems_classes: list = None
    n_train: int = 160
    n_test: int = 80
    epochs: int = 40
    seed: int = 0
    PRESETS: ClassVar[dict] = {
        "smoke": dict(dataset="cifar10", n_train=160, n_test=80, epochs=40),
        "default": dict(dataset="cifar10", n_train=None, n_test=None, epochs=20),  # every image
        "paper": dict(dataset="cifar10", n_train=2000, n_test=1000, epochs=100),
    }
    FALLBACK: ClassVar[dict] = dict(n_train=160, n_test=80)

    def _capped(self, notes):
        # CIFAR-10: cat, dog, automobile, truck (spec §6); digits: 3, 5, 1, 7
        systems = (list(self.systems_classes) if self.systems_classes is not None
                   else ([3, 5, 1, 9] if self.dataset == "cifar10" else [3, 5, 1, 7]))
        c = list(self.classes)
        n_train, n_test = self.n_train, self.n_test
        for cls in (c, systems):
            n_train = cap_balanced(self.dataset, cls, "train", n_train, notes, "training images")
            n_test = cap_balanced(self.dataset, cls, "test", n_test, notes, "test images")
        return dataclasses.replace(self, classes=c, systems_classes=systems, n_train=n_train,
                                   n_test=n_test, notes=tuple(notes))


@_register
@dataclass(frozen=True)
class Pairs(ChapterConfig):
    """``pairs``: all 45 CIFAR-10 class pairs with the two-layer network's kernels."""

    CHAPTER: ClassVar[str] = "pairs"
    WHY: ClassVar[str] = ("The chapter is about the 45 CIFAR-10 class pairs and how the gain "
                          "of the label-aware kernels varies with their difficulty; digit "
                          "pairs are nearly all easy, so that variation is not there to see.")
    n_train: object = 100  # an int, or "all" for every image of each pair
    n_val: int = 30
    n_test: int = 80
    widths: list = (256, 1024)
    epochs: int = 40
    lr: float = 1e-2
    nth_samples: int = 500
    seed: int = 0
    PRESETS: ClassVar[dict] = {
        "smoke": dict(dataset="cifar10", n_train=100, n_val=30, n_test=80, widths=[256, 1024],
                      epochs=40, lr=1e-2, nth_samples=500),
        # 400 images of each pair's training split (100 of them validate c) and every test
        # image: about 7 s a pair on two cores, so that the 45 pairs fit the book's half hour
        # (every image, n_train="all", costs about 35 s a pair: 26 min)
        "default": dict(dataset="cifar10", n_train=400, n_val=100, n_test=None,
                        widths=[256, 1024], epochs=20, lr=1e-2, nth_samples=200),
        "paper": dict(dataset="cifar10", n_train="all", n_val=100, n_test=None,
                      widths=[1024, 16384], epochs=200, lr=1e-3, nth_samples=20000),
    }


def wanted_datasets(profile: str, chapters=None) -> list:
    """The real datasets (``"mnist"``, ``"cifar10"``) the presets of ``profile`` ask for, over
    ``chapters`` (names; default: every configured chapter). ``lantk book`` fetches the missing
    ones first (:func:`lantk.data.ensure_book_data`)."""
    check_profile(profile)
    names = CONFIGS if chapters is None else [c for c in chapters if c in CONFIGS]
    wanted = []
    for name in names:
        cls = CONFIGS[name]
        for key in ("dataset", *cls.EXTRA_DATASETS):
            ds = cls.PRESETS[profile].get(key, getattr(cls, key))
            if isinstance(ds, str) and ds != EMBEDDED and ds not in wanted:
                wanted.append(ds)
    return sorted(wanted)
