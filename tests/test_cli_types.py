"""Argument types shared by the `recsys` subcommands."""
import argparse

import pytest
from hypothesis import given, strategies as st

from ui.cli_types import non_negative_float, non_negative_int, positive_float


@given(st.integers(0, 10**6))
def test_a_non_negative_whole_number_is_read_as_itself(value):
    assert non_negative_int(str(value)) == value
    assert non_negative_int(f" {value}\n") == value


@given(st.integers(max_value=-1))
def test_a_negative_number_is_refused_with_its_value(value):
    with pytest.raises(argparse.ArgumentTypeError, match=f"must be 0 or more, got {value}"):
        non_negative_int(str(value))


def _not_an_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return True
    return False


@given(st.one_of(st.text().filter(_not_an_int), st.sampled_from(["", "2.5", "ten", "1e3", "--", "0x10"])))
def test_text_that_is_not_a_whole_number_is_refused(text):
    with pytest.raises(argparse.ArgumentTypeError, match="expected a whole number"):
        non_negative_int(text)


@given(st.floats(0, 1e6, allow_nan=False))
def test_a_non_negative_budget_is_read_as_itself(value):
    assert non_negative_float(repr(value)) == value


@given(st.one_of(st.floats(max_value=-1e-9), st.sampled_from([float("inf"), float("nan")])))
def test_a_negative_or_infinite_budget_is_refused(value):
    with pytest.raises(argparse.ArgumentTypeError, match="must be a finite number, 0 or more"):
        non_negative_float(repr(value))


@given(st.sampled_from(["", "ten", "--", "1,5"]))
def test_text_that_is_not_a_number_is_refused_as_a_budget(text):
    with pytest.raises(argparse.ArgumentTypeError, match="expected a number"):
        non_negative_float(text)


@given(st.floats(1e-6, 1e6))
def test_a_positive_budget_is_read_and_zero_is_refused(value):
    assert positive_float(repr(value)) == value
    with pytest.raises(argparse.ArgumentTypeError, match="must be above 0"):
        positive_float("0")
