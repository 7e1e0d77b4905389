"""The denial-risk model's design matrix: one-hot terms of the line features, their pairs, the
modifier flags and the other codes of the visit, with the terms named in words.

Lines are first reduced to their distinct feature patterns (a practice's million lines share a
few thousand), so the matrix has one row per pattern, not per line.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.denials.features import FEATURE_WORDS, MODIFIER_FLAGS, LineFeatures

__all__ = [
    "Term",
    "alias_groups",
    "design_matrix",
    "distinct_patterns",
    "encode",
    "encoded_patterns",
    "learn_levels",
    "learn_pairs",
    "term_columns",
    "term_words",
]

#: A term's name: (feature, level, paired feature, paired level); "" when not a pair.
Term = tuple[str, str, str, str]


def learn_levels(feats: LineFeatures) -> tuple[dict[str, pd.Index], list[str]]:
    """The levels of each categorical feature present in the training lines, and the codes of
    the other-codes-in-the-visit indicators."""
    levels = {}
    for f, (codes, labels) in feats.cats.items():
        # the codes present, counted (a pass over the lines) rather than sorted
        present = (np.flatnonzero(np.bincount(codes, minlength=len(labels))) if len(codes)
                   else np.zeros(0, dtype=np.int64))
        levels[f] = pd.Index(sorted(set(labels[present].astype(str))))
    return levels, sorted(feats.with_codes)


def encode(feats: LineFeatures, levels: dict[str, pd.Index], with_codes: list[str]) -> np.ndarray:
    """Training-level code of each categorical feature (-1 when unseen), then the flags and
    the other-codes-in-the-visit indicators: one small integer row per line."""
    parts = _encoded_columns(feats, levels, with_codes)
    n = len(parts[0])
    return (
        np.column_stack([p.astype(np.int64) for p in parts]) if n
        else np.zeros((0, len(parts)), dtype=np.int64)
    )


def _encoded_columns(feats: LineFeatures, levels: dict[str, pd.Index], with_codes: list[str]) -> list[np.ndarray]:
    """The columns of :func:`encode`, one array each (categorical codes, then 0/1 flags)."""
    parts = []
    for f in FEATURE_WORDS:
        codes, labels = feats.cats[f]
        lut = levels[f].get_indexer(pd.Index(labels.astype(str)))
        parts.append(lut[codes] if len(labels) else np.full(len(codes), -1))
    n = len(parts[0])
    parts += [feats.flags[name] for name in MODIFIER_FLAGS]
    parts += [feats.with_codes.get(c, np.zeros(n, dtype=bool)) for c in with_codes]
    return parts


def encoded_patterns(
    feats: LineFeatures, levels: dict[str, pd.Index], with_codes: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct rows of :func:`encode` and each line's row among them, without building
    the per-line matrix (a million lines share a few thousand rows), and whether each line's
    payer or code was unseen in training.

    Returns
    -------
    (patterns, inv, unseen)
        ``patterns`` and ``inv`` equal ``distinct_patterns(encode(...), levels)``.
    """
    parts = _encoded_columns(feats, levels, with_codes)
    n, m = len(parts[0]), len(parts)
    unseen = (parts[0] < 0) | (parts[1] < 0)
    if n == 0:
        return np.zeros((0, m), dtype=np.int64), np.zeros(0, dtype=np.int64), unseen
    k = len(FEATURE_WORDS)
    radix = [len(levels[f]) + 1 for f in FEATURE_WORDS] + [2] * (m - k)
    if np.prod(np.asarray(radix, dtype=np.float64)) < 2.0**62:
        # the mixed-radix key of distinct_patterns, summed one column at a time
        key = np.zeros(n, dtype=np.int64)
        mult = 1
        for j, col in enumerate(parts):
            key += (col.astype(np.int64) + (1 if j < k else 0)) * mult
            mult *= radix[j]
        inv, _ = pd.factorize(key)
    else:
        frame = pd.DataFrame({j: col.astype(np.int64) for j, col in enumerate(parts)})
        inv = frame.groupby(list(frame.columns), sort=False).ngroup().to_numpy()
    inv = inv.astype(np.int64)
    # patterns are numbered in order of first appearance: a line starts one when its number
    # exceeds every number before it
    seen = np.maximum.accumulate(inv)
    first = np.flatnonzero(np.r_[True, inv[1:] > seen[:-1]])
    patterns = np.column_stack([col[first].astype(np.int64) for col in parts])
    return patterns, inv, unseen


def distinct_patterns(
    enc: np.ndarray, levels: dict[str, pd.Index]
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of the encoded features and each line's row among them."""
    n, m = enc.shape
    if n == 0:
        return enc, np.zeros(0, dtype=np.int64)
    radix = np.array(
        [len(levels[f]) + 1 for f in FEATURE_WORDS] + [2] * (m - len(FEATURE_WORDS)),
        dtype=np.float64,
    )
    if np.prod(radix) < 2.0**62:
        mult = np.cumprod(np.r_[1.0, radix[:-1]]).astype(np.int64)
        key = (
            enc
            + np.r_[
                np.ones(len(FEATURE_WORDS), dtype=np.int64),
                np.zeros(m - len(FEATURE_WORDS), dtype=np.int64),
            ]
        ) @ mult
        inv, _ = pd.factorize(key)
    else:
        frame = pd.DataFrame(enc)
        inv = frame.groupby(list(frame.columns), sort=False).ngroup().to_numpy()
    inv = inv.astype(np.int64)
    first = np.unique(inv, return_index=True)[1]
    return enc[first], inv


def learn_pairs(patterns: np.ndarray, levels: dict[str, pd.Index], interactions) -> dict:
    """The pairs of levels seen together in training, for each feature pair of
    ``interactions``: a lookup from (level a, level b) to the pair's column, and the pairs."""
    codes = {f: patterns[:, i] for i, f in enumerate(FEATURE_WORDS)}
    pairs = {}
    for fa, fb in interactions:
        ca, cb = codes[fa], codes[fb]
        ok = (ca >= 0) & (cb >= 0)
        combo = np.unique(ca[ok] * len(levels[fb]) + cb[ok])
        lut = np.full(len(levels[fa]) * len(levels[fb]), -1, dtype=np.int64)
        lut[combo] = np.arange(len(combo))
        pairs[(fa, fb)] = (lut, combo)
    return pairs


def term_columns(
    patterns: np.ndarray,
    levels: dict[str, pd.Index],
    with_codes: list[str],
    interactions,
    pairs: dict,
) -> tuple[np.ndarray, int, list[Term]]:
    """Column index of each active one-hot term per pattern (-1 where a term does not apply),
    the number of columns and the name of each column."""
    k = len(patterns)
    names: list[Term] = []
    blocks, offset = [], 0
    codes = {f: patterns[:, i] for i, f in enumerate(FEATURE_WORDS)}
    for f in FEATURE_WORDS:
        c = codes[f]
        blocks.append(np.where(c >= 0, offset + c, -1))
        names += [(f, str(v), "", "") for v in levels[f]]
        offset += len(levels[f])
    for fa, fb in interactions:
        lut, combo = pairs[(fa, fb)]
        ca, cb = codes[fa], codes[fb]
        ok = (ca >= 0) & (cb >= 0)
        ix = (
            np.where(ok, lut[np.where(ok, ca * len(levels[fb]) + cb, 0)], -1)
            if len(lut)
            else np.full(k, -1)
        )
        blocks.append(np.where(ix >= 0, offset + ix, -1))
        nb = len(levels[fb])
        names += [(fa, str(levels[fa][c // nb]), fb, str(levels[fb][c % nb])) for c in combo]
        offset += len(combo)
    extra = patterns[:, len(FEATURE_WORDS) :]
    labels = [("modifier", name, "", "") for name in MODIFIER_FLAGS] + [
        ("other code in the visit", c, "", "") for c in with_codes
    ]
    for j, label in enumerate(labels):
        blocks.append(np.where(extra[:, j] > 0, offset, -1))
        names.append(label)
        offset += 1
    cols = np.column_stack(blocks) if blocks else np.zeros((k, 0), dtype=np.int64)
    return cols, offset, names


def design_matrix(cols: np.ndarray, width: int):
    """The sparse 0/1 matrix of the patterns' terms (one row per pattern)."""
    from scipy import sparse

    r, c = np.nonzero(cols >= 0)
    return sparse.csr_matrix((np.ones(len(r)), (r, cols[r, c])), shape=(len(cols), width))


def alias_groups(X, n_pat: np.ndarray, train_lines: np.ndarray) -> np.ndarray:
    """Terms that applied to exactly the same training lines share one effect (the penalty
    splits it between them); each column's group is its most specific alias."""
    from scipy import sparse

    co = (X.T @ sparse.diags(n_pat) @ X).tocoo()
    lines = train_lines
    same = (
        (co.row < co.col) & np.isclose(co.data, lines[co.row]) & np.isclose(co.data, lines[co.col])
    )
    parent = np.arange(X.shape[1])

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    # the representative is the column listed later: interactions come after main effects
    for r, c in zip(co.row[same], co.col[same], strict=True):
        ra, rb = find(r), find(c)
        if ra != rb:
            parent[min(ra, rb)] = max(ra, rb)
    return np.array([find(i) for i in range(X.shape[1])], dtype=np.int64)


def term_words(columns: list[Term]) -> list[str]:
    """The name of each column in words, as :attr:`analytics.denials.DenialRiskModel.summary` shows it."""
    out = []
    for fa, la, fb, lb in columns:
        if fa == "modifier":
            out.append(la)
        elif fa == "other code in the visit":
            out.append(f"{fa}: {la}")
        elif fb:
            out.append(f"{FEATURE_WORDS[fa]} {la} x {FEATURE_WORDS[fb]} {lb}")
        else:
            out.append(f"{FEATURE_WORDS[fa]}: {la}")
    return out
