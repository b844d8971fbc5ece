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

    PRESETS: ClassVar[dict] = {}
    CHAPTER: ClassVar[str] = ""
    FALLBACK: ClassVar = None  # settings on the embedded digits (None: the smoke preset's)

    @classmethod
    def fields(cls) -> dict:
        """Field name -> annotation string, without the bookkeeping fields."""
        return {f.name: f.type for f in dataclasses.fields(cls) if f.name not in ("notes",)}

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
        notes = []
        preferred = values.get("dataset", EMBEDDED)
        values["dataset"] = _choose(preferred, "dataset" in given, notes)
        if values["dataset"] != preferred:  # the embedded fallback has its own sizes
            fallback = cls.fallback()
            values.update({**fallback, **given, "profile": profile, "dataset": EMBEDDED})
            if fallback:
                notes.append("on the embedded digits this chapter uses its fallback settings: "
                             + ", ".join(f"{k} = {_fmt(v)}" for k, v in fallback.items()))
        cfg = cls(**values)
        return cfg._capped(notes)

    def _capped(self, notes: list):
        """Subclasses cap their sizes here (see :func:`cap_balanced`)."""
        return dataclasses.replace(self, notes=tuple(notes))

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def asdict(self) -> dict:
        d = dataclasses.asdict(self)
        d["notes"] = list(self.notes)
        return d

    def table(self):
        """The resolved configuration as a two-column DataFrame (setting, value)."""
        import pandas as pd

        rows = [(k, _fmt(v)) for k, v in self.asdict().items() if k != "notes"]
        return pd.DataFrame(rows, columns=["setting", "value"])

    def show(self):
        """Display the table (and the notes of what ``resolve`` changed) in a notebook."""
        from IPython.display import Markdown, display

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

    data._check_dataset(preferred)
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
    PRESETS: ClassVar[dict] = {
        "smoke": dict(dataset="digits", n_train=100, n_test=80, samples=500, drift_n=16,
                      drift_widths={"standard": [64, 256, 1024],
                                    "antisymmetric": [64, 256, 1024, 4096]},
                      drift_draws={"standard": 96, "antisymmetric": 16}),
        "default": dict(dataset="mnist", n_train=1000, n_test=500, samples=2000, drift_n=16,
                        drift_widths={"standard": [64, 256, 1024],
                                      "antisymmetric": [64, 256, 1024, 4096]},
                        drift_draws={"standard": 96, "antisymmetric": 16}),
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
        "default": dict(dataset="mnist", n_train=1000, n_test=500, samples=2000),
        "paper": dict(dataset="mnist", n_train=1000, n_test=500, samples=2000),
    }
