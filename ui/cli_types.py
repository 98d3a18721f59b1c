"""Argument types shared by the `recsys` subcommands."""
from __future__ import annotations

import argparse
import math


def non_negative_int(text: str) -> int:
    """An int >= 0, for options where 0 means 'no limit' (every layer, every list)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def non_negative_float(text: str) -> float:
    """A finite float >= 0, for budgets where 0 means 'no limit'."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number, 0 or more, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite float > 0, for budgets that must allow some work."""
    value = non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text!r}")
    return value
