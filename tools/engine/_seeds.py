"""The seed lists the engine tools take on their command lines."""

from __future__ import annotations


def parse_seeds(spec: str) -> list[int]:
    """``"1-56"``, ``"1,4,9"`` or both (``"1-3,7"``) as a list of seeds, in order."""
    out: list[int] = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out
