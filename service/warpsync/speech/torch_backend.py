"""The trellis recursions in torch, vectorised across states, for GPU (also runs on CPU). Same move order
and tie rule as `kernels.py` (torch.argmax returns the first maximum), float64, int8 backpointers, the
same checkpointed blocks for long inputs."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import AlignmentError
from .model import resolve_device
from .trellis import Trellis


class TorchTrellis:
    def __init__(self, tr: Trellis, device: str = "cpu"):
        self.tr = tr
        self.dev = resolve_device(device)
        self.ext = torch.from_numpy(tr.ext).to(self.dev)
        self.m2 = torch.from_numpy(tr.m2).to(self.dev)
        self.m3 = torch.from_numpy(tr.m3).to(self.dev)
        self.neg = torch.full((3,), -math.inf, dtype=torch.float64, device=self.dev)

    def _step(self, prev: torch.Tensor, row: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = torch.cat([self.neg, prev])
        S = prev.shape[0]
        cands = torch.stack([p[3:], p[2 : 2 + S], p[1 : 1 + S] + self.m2, p[:S] + self.m3])
        best, k = cands.max(dim=0)
        return best + row[self.ext], k.to(torch.int8)

    def viterbi(self, em_np: np.ndarray, max_bp_bytes: int) -> tuple[np.ndarray, float]:
        tr = self.tr
        T, S = em_np.shape[0], tr.n_states
        em = torch.from_numpy(em_np).to(self.dev)
        block = max(1, min(T, max_bp_bytes // max(S, 1)))
        nb = math.ceil(T / block)
        prev = torch.full((S,), -math.inf, dtype=torch.float64, device=self.dev)
        prev[0] = 0.0
        cps = [prev]
        for b in range(nb - 1):
            for t in range(b * block, (b + 1) * block):
                prev, _ = self._step(prev, em[t])
            cps.append(prev)
        end_ok = torch.from_numpy(tr.end_ok).to(self.dev)
        path = np.empty(T, np.int64)
        s_end, score = -1, -math.inf
        for b in range(nb - 1, -1, -1):
            t0, t1 = b * block, min(T, (b + 1) * block)
            p = cps[b]
            bps = torch.empty((t1 - t0, S), dtype=torch.int8, device=self.dev)
            for t in range(t0, t1):
                p, bps[t - t0] = self._step(p, em[t])
            if s_end < 0:
                final = torch.where(end_ok, p, torch.full_like(p, -math.inf)).cpu().numpy()
                s_end = S - 1 - int(np.argmax(final[::-1]))
                score = float(final[s_end])
                if not np.isfinite(score):
                    raise AlignmentError("no complete alignment path: the audio is too short for the transcript")
            bp = bps.cpu().numpy()
            s = s_end
            for t in range(t1 - 1, t0 - 1, -1):
                path[t] = s
                s -= int(bp[t - t0, s])
            s_end = s
        return path, score
