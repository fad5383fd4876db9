"""Step patterns (local slope constraints) for DTW, named as dtw-python names them.

A step pattern is a set of *steps*. Each step leads from an origin cell ``(i - a, j - b)`` to the current cell
``(i, j)`` and charges a weighted sum of local costs on the cells it passes through. The tables below are the
ones of Sakoe & Chiba (1978, table I), White & Neely (1976) and Giorgino's dtw package (JSS 2009), written as
rows ``(step, di, dj, weight)`` where ``weight == -1`` marks the origin of the step and the other rows are the
cells charged, given as offsets back from ``(i, j)``.

Normalisation hint (`norm`): ``"N+M"`` divide by n + m, ``"N"`` divide by n (query length), ``"M"`` by m,
``"NA"`` not normalisable (``normalized_distance`` is NaN).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from warpsync.errors import AlignmentError

__all__ = ["STEP_PATTERNS", "SYMMETRIC_FAST", "StepPattern", "get_step_pattern"]

Norm = Literal["N+M", "N", "M", "NA"]


@dataclass(frozen=True)
class StepPattern:
    """A DTW step pattern.

    `rows`: float array (k, 4) of ``(step, di, dj, weight)`` rows as in dtw-python (weight -1 = origin);
    `norm`: the normalisation hint; `name`: the dtw-python name.
    """

    name: str
    rows: tuple[tuple[float, float, float, float], ...]
    norm: Norm

    def encode(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Kernel encoding: ``ptr`` (steps + 1), ``di``, ``dj`` (int64), ``w`` (float64).

        Entries ``ptr[s]:ptr[s+1]`` describe step `s`: the first entry is the origin (its weight is unused),
        the rest are the charged cells in table order.
        """
        arr = np.asarray(self.rows, dtype=np.float64)
        ids = arr[:, 0].astype(np.int64)
        ptr = [0]
        di: list[int] = []
        dj: list[int] = []
        w: list[float] = []
        for s in np.unique(ids):
            sel = arr[ids == s]
            origin = sel[sel[:, 3] == -1]
            if len(origin) != 1:
                raise AlignmentError(f"step pattern {self.name!r}: step {s} needs exactly one origin row")
            body = sel[sel[:, 3] != -1]
            di.append(int(origin[0, 1]))
            dj.append(int(origin[0, 2]))
            w.append(0.0)
            for r in body:
                di.append(int(r[1]))
                dj.append(int(r[2]))
                w.append(float(r[3]))
            ptr.append(len(di))
        return (
            np.asarray(ptr, dtype=np.int64),
            np.asarray(di, dtype=np.int64),
            np.asarray(dj, dtype=np.int64),
            np.asarray(w, dtype=np.float64),
        )

    @property
    def max_di(self) -> int:
        """How many rows back the furthest step reaches."""
        return int(max(r[1] for r in self.rows))

    @property
    def is_symmetric(self) -> bool:
        """True when swapping query and reference gives the same pattern (so X and Y may be transposed)."""
        steps = {}
        for s, a, b, w in self.rows:
            steps.setdefault(s, set()).add((a, b, w))
        mine = {frozenset(v) for v in steps.values()}
        swapped = {frozenset((b, a, w) for a, b, w in v) for v in steps.values()}
        return mine == swapped


def _p(name: str, norm: Norm, *v: float) -> StepPattern:
    rows = tuple(tuple(float(x) for x in v[k : k + 4]) for k in range(0, len(v), 4))
    return StepPattern(name=name, rows=rows, norm=norm)  # type: ignore[arg-type]


STEP_PATTERNS: dict[str, StepPattern] = {
    p.name: p
    for p in (
        _p("symmetric1", "NA", 1, 1, 1, -1, 1, 0, 0, 1, 2, 0, 1, -1, 2, 0, 0, 1, 3, 1, 0, -1, 3, 0, 0, 1),
        _p("symmetric2", "N+M", 1, 1, 1, -1, 1, 0, 0, 2, 2, 0, 1, -1, 2, 0, 0, 1, 3, 1, 0, -1, 3, 0, 0, 1),
        _p("asymmetric", "N", 1, 1, 0, -1, 1, 0, 0, 1, 2, 1, 1, -1, 2, 0, 0, 1, 3, 1, 2, -1, 3, 0, 0, 1),
        _p("symmetricP0", "N+M", 1, 1, 1, -1, 1, 0, 0, 2, 2, 0, 1, -1, 2, 0, 0, 1, 3, 1, 0, -1, 3, 0, 0, 1),
        _p("asymmetricP0", "N", 1, 0, 1, -1, 1, 0, 0, 0, 2, 1, 1, -1, 2, 0, 0, 1, 3, 1, 0, -1, 3, 0, 0, 1),
        _p(
            "symmetricP05",
            "N+M",
            1,
            1,
            3,
            -1,
            1,
            0,
            2,
            2,
            1,
            0,
            1,
            1,
            1,
            0,
            0,
            1,
            2,
            1,
            2,
            -1,
            2,
            0,
            1,
            2,
            2,
            0,
            0,
            1,
            3,
            1,
            1,
            -1,
            3,
            0,
            0,
            2,
            4,
            2,
            1,
            -1,
            4,
            1,
            0,
            2,
            4,
            0,
            0,
            1,
            5,
            3,
            1,
            -1,
            5,
            2,
            0,
            2,
            5,
            1,
            0,
            1,
            5,
            0,
            0,
            1,
        ),
        _p(
            "asymmetricP05",
            "N",
            1,
            1,
            3,
            -1,
            1,
            0,
            2,
            1 / 3,
            1,
            0,
            1,
            1 / 3,
            1,
            0,
            0,
            1 / 3,
            2,
            1,
            2,
            -1,
            2,
            0,
            1,
            0.5,
            2,
            0,
            0,
            0.5,
            3,
            1,
            1,
            -1,
            3,
            0,
            0,
            1,
            4,
            2,
            1,
            -1,
            4,
            1,
            0,
            1,
            4,
            0,
            0,
            1,
            5,
            3,
            1,
            -1,
            5,
            2,
            0,
            1,
            5,
            1,
            0,
            1,
            5,
            0,
            0,
            1,
        ),
        _p(
            "symmetricP1",
            "N+M",
            1,
            1,
            2,
            -1,
            1,
            0,
            1,
            2,
            1,
            0,
            0,
            1,
            2,
            1,
            1,
            -1,
            2,
            0,
            0,
            2,
            3,
            2,
            1,
            -1,
            3,
            1,
            0,
            2,
            3,
            0,
            0,
            1,
        ),
        _p(
            "asymmetricP1",
            "N",
            1,
            1,
            2,
            -1,
            1,
            0,
            1,
            0.5,
            1,
            0,
            0,
            0.5,
            2,
            1,
            1,
            -1,
            2,
            0,
            0,
            1,
            3,
            2,
            1,
            -1,
            3,
            1,
            0,
            1,
            3,
            0,
            0,
            1,
        ),
        _p(
            "symmetricP2",
            "N+M",
            1,
            2,
            3,
            -1,
            1,
            1,
            2,
            2,
            1,
            0,
            1,
            2,
            1,
            0,
            0,
            1,
            2,
            1,
            1,
            -1,
            2,
            0,
            0,
            2,
            3,
            3,
            2,
            -1,
            3,
            2,
            1,
            2,
            3,
            1,
            0,
            2,
            3,
            0,
            0,
            1,
        ),
        _p(
            "asymmetricP2",
            "N",
            1,
            2,
            3,
            -1,
            1,
            1,
            2,
            2 / 3,
            1,
            0,
            1,
            2 / 3,
            1,
            0,
            0,
            2 / 3,
            2,
            1,
            1,
            -1,
            2,
            0,
            0,
            1,
            3,
            3,
            2,
            -1,
            3,
            2,
            1,
            1,
            3,
            1,
            0,
            1,
            3,
            0,
            0,
            1,
        ),
    )
}

#: Patterns served by the fast three-neighbour kernels, with their diagonal weight.
SYMMETRIC_FAST: dict[str, float] = {"symmetric1": 1.0, "symmetric2": 2.0, "symmetricP0": 2.0}


def get_step_pattern(step_pattern: str | StepPattern) -> StepPattern:
    """Look a pattern up by its dtw-python name (or pass a `StepPattern` through)."""
    if isinstance(step_pattern, StepPattern):
        return step_pattern
    try:
        return STEP_PATTERNS[step_pattern]
    except (KeyError, TypeError):
        raise AlignmentError(
            f"unknown step_pattern {step_pattern!r}; use one of {sorted(STEP_PATTERNS)} or a StepPattern"
        ) from None
