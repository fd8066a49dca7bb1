"""Semantic hashing (Salakhutdinov & Hinton): binary codes, Hamming-distance retrieval, and the
data-independent and PCA-based hashing baselines at the same bit count (numpy only).

Retrieval ranks the whole database by Hamming distance to each query; a database item is
relevant when it has the query's label. Hamming distances are small integers, so ties are many:
they are broken by one fixed random order of the database (the same for every method), never by
the data's own order.
"""

from __future__ import annotations

import numpy as np


def to_bits(codes: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """codes [N, b] (a sigmoid code, or projections with threshold 0) → bits bool [N, b]."""
    return np.asarray(codes) > threshold


def hamming(query: np.ndarray, database: np.ndarray) -> np.ndarray:
    """Hamming distances of bits query [Q, b] to database [N, b] → int32 [Q, N], by one matmul
    of ±1 codes: d = (b − s_q · s_n) / 2."""
    sq = np.where(query, 1.0, -1.0).astype(np.float32)
    sn = np.where(database, 1.0, -1.0).astype(np.float32)
    return np.rint((query.shape[1] - sq @ sn.T) / 2).astype(np.int32)


def retrieval(
    query: np.ndarray,
    query_labels: np.ndarray,
    database: np.ndarray,
    database_labels: np.ndarray,
    *,
    ks: tuple[int, ...] = (10, 100),
    seed: int = 0,
    chunk: int = 100,
) -> dict[str, float]:
    """precision@k for each k and mAP of Hamming ranking: bits query [Q, b] with labels [Q]
    against database [N, b] with labels [N]. AP of a query: the mean, over the positions of its
    relevant items in the full ranking, of the precision at that position."""
    tie = np.random.default_rng(seed).permutation(len(database))  # the tie-breaking order
    db, db_labels = database[tie], np.asarray(database_labels)[tie]
    hits_at = {k: [] for k in ks}
    ap = []
    for start in range(0, len(query), chunk):
        dist = hamming(query[start : start + chunk], db)  # [q, N]
        small = np.uint8 if query.shape[1] < 256 else np.uint16  # numpy radix-sorts these
        order = np.argsort(dist.astype(small), axis=1, kind="stable")
        rel = db_labels[order] == np.asarray(query_labels)[start : start + chunk, None]  # [q, N]
        for k in ks:
            hits_at[k].append(rel[:, :k].mean(axis=1))
        found = np.cumsum(rel, axis=1)
        precision = found / np.arange(1, rel.shape[1] + 1)
        n_rel = np.maximum(rel.sum(axis=1), 1)
        ap.append(np.sum(precision * rel, axis=1) / n_rel)
    out = {f"precision@{k}": float(np.mean(np.concatenate(hits_at[k]))) for k in ks}
    out["mAP"] = float(np.mean(np.concatenate(ap)))
    return out


def lsh_bits(
    train: np.ndarray, test: np.ndarray, bits: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Random-projection LSH (Charikar 2002): signs of `bits` Gaussian projections through the
    training mean. train [N, D], test [M, D] → bits [N, bits], [M, bits]."""
    mean = train.mean(axis=0)
    w = np.random.default_rng(seed).normal(size=(train.shape[1], bits))
    return (train - mean) @ w > 0, (test - mean) @ w > 0


def pca_projection(train: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean [D], the top-`bits` principal directions [D, bits]) of train [N, D], from the
    D×D covariance (cheap when N ≫ D)."""
    x = np.asarray(train, np.float64)
    mean = x.mean(axis=0)
    xc = x - mean
    _, vecs = np.linalg.eigh(xc.T @ xc / len(x))  # ascending eigenvalues
    return mean, vecs[:, ::-1][:, :bits]


def itq(v: np.ndarray, iterations: int = 50, seed: int = 0) -> tuple[np.ndarray, list[float]]:
    """Iterative quantization (Gong & Lazebnik 2011): the rotation R [b, b] minimising
    ‖B − V R‖²_F over B ∈ {−1, 1}^{N×b} and orthogonal R, by alternating B = sign(V R) and the
    orthogonal Procrustes solution R = U Wᵀ of svd(Vᵀ B) = U S Wᵀ. v [N, b]: PCA-projected data.
    Returns (R, the quantization loss before each update); the loss never increases."""
    b = v.shape[1]
    r, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(b, b)))
    losses = []
    for _ in range(iterations):
        z = v @ r
        signs = np.where(z >= 0, 1.0, -1.0)
        losses.append(float(np.sum((signs - z) ** 2)))
        u, _, wt = np.linalg.svd(v.T @ signs)
        r = u @ wt
    return r, losses


def pca_bits(
    train: np.ndarray, test: np.ndarray, bits: int, *, rotate: bool, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """PCA hashing: signs of the top-`bits` principal components of train [N, D] (PCA-H), or of
    their ITQ rotation when `rotate` (PCA-ITQ). → bits [N, bits], [M, bits]."""
    mean, w = pca_projection(train, bits)
    if rotate:
        r, _ = itq((train - mean) @ w, seed=seed)
        w = w @ r
    return (train - mean) @ w > 0, (test - mean) @ w > 0
