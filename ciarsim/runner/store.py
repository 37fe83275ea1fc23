"""Atomic file writes for the runner; they live in ``ciarsim.io`` (below every layer, so the report
uses them without importing the runner). Kept so existing imports keep working."""

from ciarsim.io import atomic_path, write_atomic, write_table, write_text

__all__ = ["atomic_path", "write_atomic", "write_table", "write_text"]
