"""The LoRA depth setting, checked without importing torch (the command line checks it at parse time)."""
from __future__ import annotations


def check_lora_layers(value: int | None, name: str) -> None:
    """A LoRA depth is None (every layer) or a positive number of top layers."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{name} must be a positive number of layers, or None for every layer; got {value!r}")
