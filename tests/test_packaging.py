"""The project's metadata stays consistent: environment.yml names the same dependencies as
pyproject.toml, and the console script exists."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_matches_pyproject():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {_name(r) for r in meta["dependencies"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    conda = {_name(d) for d in deps if isinstance(d, str) and _name(d) not in ("pip", "python")}
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    assert conda == runtime, f"environment.yml {sorted(conda)} vs pyproject {sorted(runtime)}"
    assert "-e .[book,test]" in pip
    assert "conda-forge" in env["channels"]
    assert set(meta["optional-dependencies"]) >= {"book", "test"}
    assert meta["scripts"]["lantk"] == "lantk.cli:main"
