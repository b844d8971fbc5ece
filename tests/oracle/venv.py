"""Find or create the pinned side environment with neural-tangents 0.6.5 (stdlib only).

Recipe: ``python3 -m venv DIR``; ``pip install jax==0.4.23 jaxlib==0.4.23 numpy==1.26.4
"scipy<1.13" frozendict``; ``pip install --no-deps neural-tangents==0.6.5``. The location is
``$LANTK_ORACLE_VENV`` or ``.oracle-venv`` at the repository root. Used by tests/test_oracle.py
and benchmarks/bench_cntk.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
REQUIREMENTS = ["jax==0.4.23", "jaxlib==0.4.23", "numpy==1.26.4", "scipy<1.13", "frozendict"]
NT = "neural-tangents==0.6.5"

_PROBE = (
    "import sys, types; "
    "sys.modules['neural_tangents.experimental'] = types.ModuleType('x'); "
    "import jax, neural_tangents; from neural_tangents import stax; "
    "assert jax.__version__ == '0.4.23', jax.__version__; print('ok')"
)


class OracleEnvError(RuntimeError):
    """The side environment could not be created; ``offline`` when pip had no network."""

    def __init__(self, msg: str, offline: bool = False):
        super().__init__(msg)
        self.offline = offline


def venv_dir() -> Path:
    return Path(os.environ.get("LANTK_ORACLE_VENV") or ROOT / ".oracle-venv")


def python_of(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _works(py: Path) -> bool:
    if not py.exists():
        return False
    r = subprocess.run([str(py), "-c", _PROBE], capture_output=True, text=True, timeout=300,
                       check=False)
    return r.returncode == 0 and "ok" in r.stdout


def _base_python() -> str:
    """An interpreter for which jaxlib 0.4.23 has wheels (CPython 3.9-3.12)."""
    if (3, 9) <= sys.version_info[:2] <= (3, 12):
        return sys.executable
    for name in ("python3.12", "python3.11", "python3.10"):
        found = shutil.which(name)
        if found:
            return found
    raise OracleEnvError(f"no Python 3.9-3.12 found for jaxlib 0.4.23 (running "
                         f"{sys.version.split()[0]}); set LANTK_ORACLE_VENV to an existing env")


def _run(cmd, log):
    log.write("$ " + " ".join(cmd) + "\n")
    log.flush()
    r = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, text=True, timeout=1800,
                       check=False)
    log.write(f"rc={r.returncode}\n")
    log.flush()
    return r.returncode


def _pip_offline(py: str, tmp: Path) -> bool:
    """True when pip cannot download from the package index (no network)."""
    r = subprocess.run([py, "-m", "pip", "download", "--no-deps", "--no-cache-dir",
                        "--dest", str(tmp), "frozendict"], capture_output=True, text=True,
                       timeout=600, check=False)
    return r.returncode != 0


def ensure(verbose: bool = False) -> Path:
    """Return the side interpreter, creating the environment with the recipe if needed.

    Raises OracleEnvError (with ``offline=True`` when pip cannot reach the index).
    """
    venv = venv_dir()
    py = python_of(venv)
    if _works(py):
        return py
    # A missing env is created; an existing but broken one is completed in place.
    base = _base_python()
    venv.mkdir(parents=True, exist_ok=True)
    log_path = venv / "lantk-install.log"
    with open(log_path, "a") as log:
        if not py.exists() and _run([base, "-m", "venv", str(venv)], log) != 0:
            raise OracleEnvError(f"`{base} -m venv {venv}` failed; see {log_path}")
        pip = [str(py), "-m", "pip", "install", "--disable-pip-version-check"]
        ok = _run(pip + REQUIREMENTS, log) == 0 and _run(pip + ["--no-deps", NT], log) == 0
    if not ok or not _works(py):
        offline = _pip_offline(str(py) if py.exists() else base, venv.parent / ".pip-probe")
        shutil.rmtree(venv.parent / ".pip-probe", ignore_errors=True)
        tail = log_path.read_text()[-3000:] if log_path.exists() else ""
        raise OracleEnvError(
            f"could not create the neural-tangents side environment at {venv} "
            f"({'pip cannot reach the package index' if offline else 'install failed'}); "
            f"log {log_path}:\n{tail}", offline=offline)
    return py


if __name__ == "__main__":
    print(ensure())
