"""Semantic hashing by a sigmoid code: Hamming retrieval of test images against the training set,
against LSH, PCA hashing and PCA-ITQ on the pixels at the same bit count."""

from __future__ import annotations

import numpy as np

from jaxae import data
from jaxae import hashing as hashing_lib
from jaxae.analysis import figures
from jaxae.analysis.context import Context, Skipped

plt = figures.plt
KS = (10, 100)


def hashing(ctx: Context) -> dict:
    """Sigmoid codes only: the code thresholded at 0.5 as a hash, precision@10, @100 and mAP of
    Hamming retrieval (test queries, training set as database, same label = relevant), next to
    LSH, PCA hashing and PCA-ITQ of the pixels with as many bits."""
    model = ctx.run.config.model
    if model.get("code_activation") != "sigmoid":
        raise Skipped("the code is not a sigmoid code in (0, 1), so not a hash")
    n_db = min(ctx.limits.pca_train, len(ctx.dataset.train_images))
    n_q = min(ctx.limits.probe_test, len(ctx.x_eval))
    x_db = data.to_float(ctx.dataset.train_images[:n_db])
    y_db, y_q = ctx.dataset.train_labels[:n_db], ctx.y_eval[:n_q]
    codes_db, codes_q = ctx.codes(x_db), ctx.eval_codes_flat[:n_q]
    bits = codes_q.shape[1]
    pix_db, pix_q = x_db.reshape(n_db, -1), ctx.x_eval[:n_q].reshape(n_q, -1)
    seed = int(ctx.run.config.seed)
    methods = {
        "autoencoder": (hashing_lib.to_bits(codes_db), hashing_lib.to_bits(codes_q)),
        "LSH": hashing_lib.lsh_bits(pix_db, pix_q, bits, seed),
        "PCA": hashing_lib.pca_bits(pix_db, pix_q, bits, rotate=False),
        "PCA-ITQ": hashing_lib.pca_bits(pix_db, pix_q, bits, rotate=True, seed=seed),
    }
    scores = {
        name: hashing_lib.retrieval(q, y_q, db, y_db, ks=KS, seed=seed)
        for name, (db, q) in methods.items()
    }
    chart(ctx, scores, bits)
    near = np.mean(np.minimum(codes_q, 1 - codes_q) < 0.1)  # how binary the code already is
    return {
        "bits": bits,
        "binary_code": model.get("binary_code", "none"),
        "database": n_db,
        "queries": n_q,
        "code_within_0.1_of_0_or_1": float(near),
        "bit_balance": np.mean(methods["autoencoder"][0], axis=0).tolist(),
        **scores,
    }


def chart(ctx: Context, scores: dict[str, dict], bits: int) -> None:
    """Figure hashing: precision@k and mAP of every method, grouped bars."""
    metrics = [*(f"precision@{k}" for k in KS), "mAP"]
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(scores)
    for i, (name, s) in enumerate(scores.items()):
        xs = np.arange(len(metrics)) + i * width
        ax.bar(xs, [s[m] for m in metrics], width, label=name, color=f"C{i}")
    ax.set_xticks(np.arange(len(metrics)) + 0.4 - width / 2, metrics)
    ax.set_ylabel("same label as the query")
    ax.set_ylim(0, 1)
    ax.set_title(f"Hamming retrieval with {bits}-bit codes, test queries against train")
    ax.legend(fontsize=8)
    ctx.save(fig, "hashing")
