"""The shared argument checks of lantk._checks that the hostile-input errors go through."""

import numpy as np
import pytest

from lantk import _checks


@pytest.mark.parametrize("value, expected", [(3, 3), (np.int64(3), 3), (3.0, 3),
                                             (np.float32(2.0), 2)])
def test_check_int_accepts_integers(value, expected):
    out = _checks.check_int(value, "n")
    assert out == expected and type(out) is int


@pytest.mark.parametrize("value", [0, -1, 2.5, "3", None, True, np.bool_(True), np.nan, np.inf,
                                   [3], np.array([3])])
def test_check_int_rejects(value):
    with pytest.raises(ValueError, match="n must be a positive integer, got"):
        _checks.check_int(value, "n")


def test_check_int_minimum_and_none():
    assert _checks.check_int(0, "n", minimum=0) == 0
    assert _checks.check_int(-5, "n", minimum=None) == -5
    assert _checks.check_int(None, "n", allow_none=True) is None
    with pytest.raises(ValueError, match="n must be a non-negative integer"):
        _checks.check_int(-1, "n", minimum=0)
    with pytest.raises(ValueError, match="n must be an integer >= 2"):
        _checks.check_int(1, "n", minimum=2)


def test_check_real():
    assert _checks.check_real(np.float32(0.5), "a") == 0.5
    assert _checks.check_real(np.array(2.0), "a") == 2.0
    assert _checks.check_real(np.inf, "t", allow_inf=True) == np.inf
    assert _checks.check_real(None, "a", allow_none=True) is None
    for value, match in (("1", "a must be a real number"), (None, "a must be a real number"),
                         (True, "a must be a real number"), ([1.0], "a must be a real number"),
                         (1j, "a must be a real number"), (np.nan, "a must be a finite number"),
                         (-np.inf, "a must be a finite number"), (np.inf, "a must be a finite")):
        with pytest.raises(ValueError, match=match):
            _checks.check_real(value, "a")
    with pytest.raises(ValueError, match="a must be positive, got 0.0"):
        _checks.check_real(0, "a", positive=True)
    with pytest.raises(ValueError, match="a must be non-negative"):
        _checks.check_real(-1e-300, "a", nonnegative=True)
    with pytest.raises(ValueError, match="t must be a finite number"):
        _checks.check_real(-np.inf, "t", allow_inf=True)


def test_check_seed():
    assert _checks.check_seed(3) == 3
    assert _checks.check_seed((1, 2, 3)) == (1, 2, 3)
    g = np.random.default_rng(0)
    assert _checks.check_seed(g, allow_generator=True) is g
    for bad in (-1, 1.5, "0", None, (1, -2), (), g):
        with pytest.raises(ValueError, match="seed must be a non-negative integer"):
            _checks.check_seed(bad)


def test_check_choice():
    assert _checks.check_choice("a", "mode", ("a", "b")) == "a"
    with pytest.raises(ValueError, match="mode must be one of 'a', 'b'; got 'c'"):
        _checks.check_choice("c", "mode", ("a", "b"))
    with pytest.raises(ValueError, match="mode must be one of"):
        _checks.check_choice(["a"], "mode", ("a", "b"))


def test_check_int_takes_zero_dimensional_arrays():
    assert _checks.check_int(np.array(4), "n") == 4
    with pytest.raises(ValueError, match="n must be a positive integer"):
        _checks.check_int(np.array(4.5), "n")
