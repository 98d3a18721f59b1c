"""Data sets, the canonical catalogue and interactions, durable stores, set-up fetching."""
