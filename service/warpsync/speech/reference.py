"""Slow plain-NumPy references of the CTC kernels (tests only; never imported by the service)."""

from __future__ import annotations

import numpy as np

from .trellis import Trellis


def viterbi_ref(em: np.ndarray, tr: Trellis) -> tuple[np.ndarray, float]:
    T, S = em.shape[0], tr.n_states
    score = np.full((T, S), -np.inf)
    bp = np.zeros((T, S), np.int64)
    prev = np.full(S, -np.inf)
    prev[0] = 0.0
    for t in range(T):
        for s in range(S):
            cands = [prev[s]]
            cands.append(prev[s - 1] if s >= 1 else -np.inf)
            cands.append(prev[s - 2] + tr.m2[s] if s >= 2 else -np.inf)
            cands.append(prev[s - 3] + tr.m3[s] if s >= 3 else -np.inf)
            k = 0
            for j in range(1, 4):
                if cands[j] > cands[k]:
                    k = j
            score[t, s] = cands[k] + em[t, tr.ext[s]]
            bp[t, s] = k
        prev = score[t]
    final = np.where(tr.end_ok, score[T - 1], -np.inf)
    s = S - 1 - int(np.argmax(final[::-1]))
    best = float(final[s])
    path = np.empty(T, np.int64)
    for t in range(T - 1, -1, -1):
        path[t] = s
        s -= bp[t, s]
    return path, best


def forward_backward_ref(em: np.ndarray, tr: Trellis) -> tuple[np.ndarray, float]:
    """Posterior log-occupancy gamma (T, S) and log Z."""
    T, S = em.shape[0], tr.n_states
    alpha = np.full((T, S), -np.inf)
    prev = np.full(S, -np.inf)
    prev[0] = 0.0
    for t in range(T):
        for s in range(S):
            terms = [prev[s]]
            if s >= 1:
                terms.append(prev[s - 1])
            if s >= 2 and tr.m2[s] == 0:
                terms.append(prev[s - 2])
            if s >= 3 and tr.m3[s] == 0:
                terms.append(prev[s - 3])
            alpha[t, s] = np.logaddexp.reduce(terms) + em[t, tr.ext[s]]
        prev = alpha[t]
    beta = np.full((T, S), -np.inf)
    beta[T - 1] = np.where(tr.end_ok, 0.0, -np.inf)
    for t in range(T - 2, -1, -1):
        for s in range(S):
            terms = [beta[t + 1, s] + em[t + 1, tr.ext[s]]]
            for k, m in ((1, None), (2, tr.m2), (3, tr.m3)):
                if s + k < S and (m is None or m[s + k] == 0):
                    terms.append(beta[t + 1, s + k] + em[t + 1, tr.ext[s + k]])
            beta[t, s] = np.logaddexp.reduce(terms)
    log_z = float(np.logaddexp.reduce(np.where(tr.end_ok, alpha[T - 1], -np.inf)))
    return alpha + beta - log_z, log_z


def word_occupancy_ref(em: np.ndarray, tr: Trellis, spans) -> np.ndarray:
    g, _ = forward_backward_ref(em, tr)
    out = []
    for w, (a, e) in enumerate(spans):
        p = np.exp(g[a:e, tr.word_lo[w] : tr.word_hi[w] + 1]).sum(axis=1)
        out.append(min(1.0, max(0.0, p.mean() if e > a else 0.0)))
    return np.array(out)
