"""Re-export of ``apps.kit.instants`` (the rule lives in the kit; this path stays importable)."""

from apps.kit.instants import EARLIEST, LATEST, OUT_OF_RANGE, usable

__all__ = ["EARLIEST", "LATEST", "OUT_OF_RANGE", "usable"]
