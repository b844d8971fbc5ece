import os
from pathlib import Path

import pytest

# the front matter of a jupytext MyST chapter, for the small chapters the runner tests build
MYST_HEADER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
"""


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real MNIST/CIFAR-10 files. Skips locally when LANTK_DATA_DIR is unset; in CI they
    must be there, so the test fails instead of skipping."""
    root = os.environ.get("LANTK_DATA_DIR")
    if not root:
        if os.environ.get("CI"):
            pytest.fail("LANTK_DATA_DIR is unset in CI: the real-data tests must run there")
        pytest.skip("LANTK_DATA_DIR is unset: set it to the folder with mnist/ and cifar-10-batches-py/")
    path = Path(root).resolve()
    if not path.is_dir():
        pytest.fail(f"LANTK_DATA_DIR={root} is not a folder")
    return path


@pytest.fixture
def x64():
    """JAX's 64-bit mode on for one test, for tests whose *own* JAX code (references, a
    ``jax.jit`` around a lantk kernel) computes in float64. lantk's functions need no such
    thing: ``import lantk`` leaves JAX's configuration alone and they switch x64 on themselves
    (tests/test_x64.py)."""
    from lantk._x64 import local_x64

    with local_x64():
        yield
