"""Streaming feature declarations: declared once, used by the Feast repo, the streaming engine and the
offline recomputation (replay, backtests, tests), so the three can never drift apart."""
