"""The project's metadata stays consistent: environment.yml names the same dependencies as
pyproject.toml, the console script exists, and the package ships all its modules."""
import re
import tomllib
from pathlib import Path

import pytest
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


def _package_files() -> set[str]:
    return {p.relative_to(ROOT).as_posix() for p in (ROOT / "lantk").rglob("*.py")
            if "__pycache__" not in p.parts}


def test_every_subpackage_is_found_by_the_packages_config():
    """`[tool.setuptools.packages.find]` finds every folder of lantk/ that holds modules
    (lantk/book among them): each has an __init__.py, so none is left out of a wheel."""
    from setuptools import find_packages

    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = set(find_packages(str(ROOT), **cfg["packages"]["find"]))
    folders = {str(Path(f).parent).replace("/", ".") for f in _package_files()}
    assert "lantk.book" in folders
    assert folders <= found, f"not packaged: {sorted(folders - found)}"


@pytest.mark.slow
def test_a_built_wheel_ships_every_module(tmp_path):
    """What `pip install .` installs: a wheel built from a copy of the sources."""
    import shutil
    import subprocess
    import sys
    import zipfile

    src = tmp_path / "src"
    shutil.copytree(ROOT / "lantk", src / "lantk", ignore=shutil.ignore_patterns("__pycache__"))
    for f in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / f, src / f)
    subprocess.run([sys.executable, "-c", "import sys; from setuptools import build_meta; "
                    "build_meta.build_wheel(sys.argv[1])", str(tmp_path / "dist")],
                   cwd=src, check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("lantk-*.whl")
    shipped = {n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".py")}
    assert "lantk/book/__init__.py" in shipped and "lantk/book/execute.py" in shipped
    assert _package_files() <= shipped, sorted(_package_files() - shipped)
