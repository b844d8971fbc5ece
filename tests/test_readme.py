"""The README's Python examples run as written (those that read CIFAR-10/MNIST need the data)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.DOTALL)


def test_readme_has_examples():
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("i", range(len(BLOCKS)))
def test_readme_example_runs(i, request, capsys):
    code = BLOCKS[i]
    if re.search(r'"(cifar10|mnist)"', code):
        request.getfixturevalue("data_dir")          # skips locally, fails in CI without data
    exec(compile(code, f"README.md example {i + 1}", "exec"), {"__name__": "__readme__"})  # noqa: S102
    printed = capsys.readouterr().out
    if "print(" in code:
        assert printed.strip(), "the example printed nothing"
