"""The profiles: every chapter's configuration, its overrides, the embedded fallback and caps."""

import dataclasses

import pytest

from lantk import data, profiles, runner

ROOT = runner.find_root(__file__)


def _chapters():
    return {p.stem: p for p in (ROOT / "book").glob("*.md")
            if runner.is_executable(runner.read_chapter(p))}


def test_profile_names_and_the_runner_agree():
    assert profiles.PROFILES == ("smoke", "default", "paper")
    assert runner.PROFILES == profiles.PROFILES and profiles.DEFAULT_PROFILE == "default"
    with pytest.raises(ValueError, match="unknown profile 'quick'"):
        profiles.NTK.resolve("quick")


@pytest.mark.parametrize("name", sorted(profiles.CONFIGS))
def test_every_configured_chapter_declares_what_its_config_resolves(name):
    """Each chapter whose sizes come from a profile passes its parameters through resolve():
    every parameter left at None has a config field of that name, and its declared type."""
    source = _chapters()[name]
    params = runner.chapter_parameters(source)
    types = runner.parameter_types(source)
    assert params["profile"] == "default"
    fields = profiles.CONFIGS[name].fields()
    for p, default in params.items():
        if default is None:
            assert p in fields, f"{name}: parameter {p} = None has no field in its config"
            assert p in types and type(None) in types[p], f"{name}: {p} has no declared type"
    text = source.read_text()
    assert f"profiles.{profiles.CONFIGS[name].__name__}.resolve(" in text
    assert ".show(output_dir)" in text


def test_every_experiment_chapter_has_a_config():
    summaries = {"claims", "execution"}
    assert set(_chapters()) - summaries == set(profiles.CONFIGS)


def test_overrides_none_keeps_the_preset_and_zero_is_a_value():
    cfg = profiles.LantkHR.resolve("smoke", n_train=None, n_val=0)
    assert cfg.n_train == profiles.LantkHR.PRESETS["smoke"]["n_train"] and cfg.n_val == 0
    with pytest.raises(ValueError, match="has no setting n_trian"):
        profiles.LantkHR.resolve("smoke", n_trian=5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.n_train = 3


def test_fallback_to_the_embedded_digits_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("LANTK_DATA_DIR", str(tmp_path))   # an empty data root
    cfg = profiles.Generalisation.resolve("default")
    assert cfg.dataset == "digits" and cfg.mnist_dataset == "digits"
    assert any("cifar10 was not found" in n for n in cfg.notes)
    assert any("fallback settings" in n for n in cfg.notes)
    assert cfg.n_train == profiles.Generalisation.FALLBACK["n_train"]
    cfg = profiles.Intro.resolve("default")
    assert cfg.motivation_dataset == "digits" and cfg.motivation_n_train == 250
    with pytest.raises(FileNotFoundError, match="lantk data fetch mnist"):
        profiles.NTK.resolve("default", dataset="mnist")   # asked for explicitly: an error
    table = cfg.table()
    assert list(table.columns) == ["setting", "value"] and "motivation_dataset" in set(table.setting)


def _sizes_fit(cfg):
    """Every size of a resolved configuration fits the data found (checked by building the
    tasks' index sets, as the chapters do)."""
    def fits(ds, classes, split, n, reserve=0):
        return n is None or n + reserve <= data.largest_balanced(ds, classes, split)

    if isinstance(cfg, profiles.BinaryTask):
        v = cfg.n_val or 0
        return (fits(cfg.dataset, cfg.classes, "train", cfg.n_train, v)
                and fits(cfg.dataset, cfg.classes, "test", cfg.n_test))
    if isinstance(cfg, profiles.Generalisation):
        ten = list(range(10))
        ok = all(fits(cfg.dataset, p, "train", cfg.n_train, cfg.n_val)
                 and fits(cfg.dataset, p, "test", cfg.n_test) for p in cfg.pairs)
        ok &= all(fits(cfg.mnist_dataset, p, "train", cfg.mnist_n_train, cfg.mnist_n_val or 0)
                  and fits(cfg.mnist_dataset, p, "test", cfg.mnist_n_test) for p in cfg.mnist_pairs)
        return ok and fits(cfg.dataset, ten, "train", cfg.mc_n_train, cfg.mc_n_val or 0) \
            and fits(cfg.dataset, ten, "test", cfg.mc_n_test)
    if isinstance(cfg, profiles.Intro):
        ten = list(range(10))
        return (fits(cfg.dataset, cfg.classes, "train", cfg.n_train)
                and fits(cfg.motivation_dataset, ten, "train", cfg.motivation_n_train)
                and fits(cfg.motivation_dataset, ten, "test", cfg.motivation_n_test))
    if isinstance(cfg, profiles.Elasticity):
        return all(fits(cfg.dataset, c, "train", cfg.n_train) and fits(cfg.dataset, c, "test", cfg.n_test)
                   for c in (cfg.classes, cfg.systems_classes))
    return True


@pytest.mark.parametrize("profile", profiles.PROFILES)
def test_no_profile_asks_for_more_images_than_the_shared_data_hold(data_dir, profile):
    for name, cls in profiles.CONFIGS.items():
        cfg = cls.resolve(profile)
        assert not any("was not found" in n for n in cfg.notes), \
            f"{name} ({profile}) fell back although the shared data are there"
        assert _sizes_fit(cfg), f"{name} ({profile}): {cfg}"


def test_caps_are_recorded(data_dir):
    cfg = profiles.LantkHR.resolve("paper", n_train=10**6)
    assert cfg.n_train + cfg.n_val == data.largest_balanced("mnist", cfg.classes, "train")
    assert any("training images: 1000000 asked" in n for n in cfg.notes)


def test_default_profile_has_the_power_sizes_of_the_issue(data_dir):
    """The default profile's sizes with the shared data (issue: a default book that can answer
    the paper's questions): all ten pairs at every image, 4,000 ten-class images, five MNIST
    pairs at 1,000 images with widths to 4,096 and both NTH initialisations, CNTK-V-2K."""
    g = profiles.Generalisation.resolve("default")
    assert len(g.pairs) == 10 and g.n_train is None and g.n_test is None and g.patience
    assert g.mc_n_train >= 4000
    assert len(g.mnist_pairs) >= 5 and g.mnist_n_train >= 1000 and max(g.widths) >= 4096
    assert set(g.nth_inits) == {"standard", "antisymmetric"}
    i = profiles.Intro.resolve("default")
    assert i.motivation_n_train == 2000 and i.motivation_n_test is None and len(i.depths) >= 2
    for cls in (profiles.NTK, profiles.LabelAwareness, profiles.LantkHR, profiles.LantkNTH,
                profiles.Outlook):
        c = cls.resolve("default")
        assert c.dataset == "mnist" and c.n_train >= 1000, cls.__name__
    e = profiles.Elasticity.resolve("default")
    assert e.n_train is None and e.n_test is None
    # the 45 CIFAR-10 pairs on every test image, 400 training images each (the budget);
    # networks at two widths; the paper profile takes every image
    p = profiles.Pairs.resolve("default")
    assert p.dataset == "cifar10" and p.n_train == 400 and p.n_val < p.n_train
    assert p.n_test is None and profiles.Pairs.PRESETS["paper"]["n_train"] == "all"
    assert len(p.widths) == 2 and p.nth_samples > 0


def test_paper_presets_are_the_papers_sizes():
    """With the full datasets nothing is capped, so the paper profile's presets are what it
    runs: every image of each of the ten pairs, three seeds, the paper's CNN paper_cnn(4)."""
    g = profiles.Generalisation.PRESETS["paper"]
    assert [tuple(p) for p in g["pairs"]] == profiles.PAPER_PAIRS
    assert g["n_train"] is None and g["n_test"] is None and g["cnn_k"] == 4 and len(g["seeds"]) == 3
    assert profiles.Intro.PRESETS["paper"]["motivation_n_train"] == 2000


def test_a_fallback_run_shows_a_notice_naming_the_data_and_the_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("LANTK_DATA_DIR", str(tmp_path))
    for name, cls in profiles.CONFIGS.items():
        cfg = cls.resolve("default")
        text = cfg.notice()
        wanted = cfg.fell_back
        assert wanted, name   # every chapter of the default profile wants real data
        assert text and "embedded 8×8 digits" in text and "not testable" in text, name
        for m in wanted:
            assert f"`lantk data fetch {m}`" in text, name
    assert profiles.LantkHR.resolve("smoke").notice() is None   # smoke asks for the digits


def test_show_renders_the_notice_as_a_warning_admonition(tmp_path, monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell  # noqa: F401  (IPython present)
    from IPython.display import HTML

    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    monkeypatch.setenv("LANTK_DATA_DIR", str(tmp_path))
    profiles.Pairs.resolve("default").show()
    assert isinstance(shown[0], HTML) and 'class="admonition warning' in shown[0].data
    assert "<code>lantk data fetch cifar10</code>" in shown[0].data


def test_show_records_the_resolved_configuration(tmp_path, monkeypatch):
    import json

    monkeypatch.setattr("IPython.display.display", lambda obj: None)
    cfg = profiles.LantkHR.resolve("smoke", n_train=50)
    cfg.show(tmp_path)
    rec = json.loads((tmp_path / "config.json").read_text())["results"]
    assert rec["chapter"] == "lantk_hr" and rec["n_train"] == 50 and rec["profile"] == "smoke"
    assert rec["fell_back"] == [] and rec["n_val"] == profiles.LantkHR.PRESETS["smoke"]["n_val"]


@pytest.mark.slow
def test_an_offline_chapter_renders_the_fallback_notice(tmp_path, monkeypatch):
    """End to end: with no data under the root and LANTK_OFFLINE=1, a chapter of the default
    profile runs on the embedded digits and its executed notebook carries the warning."""
    import json

    empty = tmp_path / "data"
    empty.mkdir()
    monkeypatch.setenv("LANTK_DATA_DIR", str(empty))
    monkeypatch.setenv("LANTK_OFFLINE", "1")
    res = runner.run_chapter("label_awareness", {}, "default", root=ROOT, out_dir=tmp_path / "out",
                             progress=False, quiet=True)
    nb = json.loads(res.notebook.read_text())
    html = [o["data"].get("text/html", "") for c in nb["cells"] if c["cell_type"] == "code"
            for o in c.get("outputs", []) if "data" in o]
    html = ["".join(h) if isinstance(h, list) else h for h in html]
    assert any("lantk-fallback" in h and "lantk data fetch mnist" in h for h in html)
    cfg = json.loads((tmp_path / "out" / "config.json").read_text())["results"]
    assert cfg["dataset"] == "digits" and cfg["fell_back"] == ["mnist"]


def test_generalisation_cnn_augment_is_checked():
    from lantk import profiles

    assert profiles.Generalisation.PRESETS["default"]["cnn_augment"] == "flip+shift"
    assert profiles.Generalisation.FALLBACK["cnn_augment"] == "none"  # not on 8x8 digits
    with pytest.raises(ValueError, match="cnn_augment must be one of"):
        profiles.Generalisation.resolve("smoke", dataset="digits", cnn_augment="rotate")


def test_generalisation_cnn_monitor_is_checked():
    """The default CNN stops on its validation loss; anything but accuracy/loss is named."""
    assert profiles.Generalisation.PRESETS["default"]["cnn_monitor"] == "loss"
    assert profiles.Generalisation.resolve("smoke", dataset="digits").cnn_monitor == "accuracy"
    with pytest.raises(ValueError, match="cnn_monitor must be one of"):
        profiles.Generalisation.resolve("smoke", dataset="digits", cnn_monitor="auc")


def test_generalisation_folds_are_checked():
    """The default profile cross-fits the kernel methods (every image of a pair tested once);
    the paper profile keeps the official split; bad values and several seeds on a subset of
    the training images are named errors."""
    assert profiles.Generalisation.PRESETS["default"]["folds"] == 6
    assert profiles.Generalisation.PRESETS["paper"].get("folds", 1) == 1
    assert profiles.Generalisation.resolve("smoke", dataset="digits").folds == 4
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="folds must be a positive integer"):
            profiles.Generalisation.resolve("smoke", dataset="digits", folds=bad)
    with pytest.raises(ValueError, match="n_train=None"):
        profiles.Generalisation.resolve("smoke", dataset="digits", seeds=[0, 1], n_train=40)
