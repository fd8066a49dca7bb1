"""Uses of the codes: linear probe and k-means against pixels and PCA, and anomaly detection."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import cluster, decomposition, linear_model, metrics

from jaxae import data
from jaxae.analysis import figures
from jaxae.analysis.context import Context, Skipped

plt = figures.plt


PCA_SMALL = 16  # the small PCA baseline: how far a few linear directions go
PROBE_C = 100.0  # inverse L2 strength of every probe, on features of unit mean squared norm


def downstream(ctx: Context) -> dict:
    """Linear-probe accuracy and k-means NMI of the codes, the raw pixels and PCA codes (as many
    components as the code has numbers, and 16), every feature set prepared alike: centred and
    divided by one number, its root-mean-square example norm (so the relative sizes of its
    features stay: PCA's weak components stay weak), then the same logistic regression."""
    ds, lim = ctx.dataset, ctx.limits
    x_train = data.to_float(ds.train_images[: lim.probe_train])
    y_train = ds.train_labels[: lim.probe_train]
    n_test = min(lim.probe_test, len(ctx.x_eval))
    y_test = ctx.y_eval[:n_test]
    if len(np.unique(y_train)) < 2 or len(np.unique(y_test)) < 2:
        raise Skipped("the probe needs at least two classes in the train and test images")
    features = feature_sets(ctx, x_train, n_test)
    result: dict[str, Any] = {
        "train_examples": len(x_train),
        "test_examples": n_test,
        "code_size": int(features["codes"][0].shape[1]),
        "pca_components": [int(f[0].shape[1]) for n, f in features.items() if n.startswith("PCA")],
        "preprocessing": "centred, divided by the RMS example norm (one number per feature set)",
        "probe": f"multinomial logistic regression, C={PROBE_C:g}",
        "chance_accuracy": float(np.max(np.bincount(y_test)) / n_test),
    }
    for name, (f_train, f_test) in features.items():
        result[name] = score_features(f_train, y_train, f_test, y_test, ctx.run.config.seed)
    _plot_downstream(ctx, result, list(features), n_test)
    return result


def feature_sets(ctx: Context, x_train: np.ndarray, n_test: int) -> dict:
    """{name: (train [N, F], test [n_test, F])} for the codes, raw pixels, and PCA with as many
    components as the code has numbers and with PCA_SMALL (each capped by the data)."""
    raw_train = x_train.reshape(len(x_train), -1)
    raw_test = ctx.x_eval[:n_test].reshape(n_test, -1)
    code_train = ctx.codes(x_train).reshape(len(x_train), -1)
    features = {
        "codes": (code_train, ctx.eval_codes_flat[:n_test]),
        "raw pixels": (raw_train, raw_test),
    }
    cap = min(raw_train.shape)
    sizes = sorted({min(code_train.shape[1], cap), min(PCA_SMALL, code_train.shape[1], cap)})
    pca = decomposition.PCA(n_components=sizes[-1], svd_solver=figures.pca_solver(raw_train))
    pca.fit(raw_train)
    p_train, p_test = pca.transform(raw_train), pca.transform(raw_test)
    for k in sizes[::-1]:  # the leading k components of one fit are the k-component PCA
        features[f"PCA-{k}"] = (p_train[:, :k], p_test[:, :k])
    return features


def prepare(f_train: np.ndarray, f_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres f_train [N, F] and f_test [M, F] on the train mean and divides both by the train
    set's root-mean-square example norm: one scale per feature set, so features keep their
    relative sizes (a rotation, e.g. PCA with every component, changes nothing)."""
    mean = f_train.mean(axis=0)
    centred = f_train - mean
    norm = float(np.sqrt(np.mean(np.sum(centred**2, axis=1)))) or 1.0
    return centred / norm, (f_test - mean) / norm


def score_features(
    f_train: np.ndarray, y_train: np.ndarray, f_test: np.ndarray, y_test: np.ndarray, seed: int
) -> dict:
    """Test accuracy of logistic regression (C=PROBE_C) fit on `prepare`d (f_train [N, F],
    y_train [N]), and the NMI of k-means (one cluster per test class) on the prepared f_test
    [M, F] against y_test [M]."""
    f_train, f_test = prepare(np.asarray(f_train, np.float64), np.asarray(f_test, np.float64))
    probe = linear_model.LogisticRegression(C=PROBE_C, max_iter=2000).fit(f_train, y_train)
    n_clusters = len(np.unique(y_test))
    clusters = cluster.KMeans(n_clusters=n_clusters, n_init=4, random_state=seed).fit_predict(
        f_test
    )
    return {
        "dim": int(f_train.shape[1]),
        "linear_probe_accuracy": float(probe.score(f_test, y_test)),
        "kmeans_nmi": float(metrics.normalized_mutual_info_score(y_test, clusters)),
    }


def _plot_downstream(ctx: Context, result: dict, names: list[str], n_test: int) -> None:
    """Figure downstream: probe accuracy and k-means NMI per feature set."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    pcas = [n for n in names if n.startswith("PCA")]  # of the code's size first, then small
    colors = [figures.KIND_COLORS.get(n) or ("C2" if n == pcas[0] else "#98df8a") for n in names]
    for ax, (key, title) in zip(
        axes,
        (("linear_probe_accuracy", "linear-probe accuracy"), ("kmeans_nmi", "k-means NMI")),
        strict=True,
    ):
        vals = [result[n][key] for n in names]
        bars = ax.bar(range(len(names)), vals, color=colors)
        ax.bar_label(bars, fmt="%.3f")
        if key == "linear_probe_accuracy":
            ax.axhline(result["chance_accuracy"], color="gray", ls="--", label="majority class")
            ax.legend(fontsize=8, loc="upper right")
        ax.set_ylim(0, 1.1)
        ax.set_ylabel(title)
        ax.set_title(f"{title} on {n_test} test images")
        ax.set_xticks(range(len(names)), [f"{n}\n({result[n]['dim']} numbers)" for n in names])
    fig.suptitle(
        f"every feature set centred and scaled by one number, the same probe (C={PROBE_C:g}); "
        f"fit on {result['train_examples']} training images",
        fontsize=10,
    )
    fig.tight_layout()
    ctx.save(fig, "downstream")


def anomaly(ctx: Context) -> dict:
    """Reconstruction-error anomaly score for the class held out of training, or the rows the
    dataset marks as anomalies (a table's anomaly column): ROC-AUC, average precision, histogram."""
    held_out = int(ctx.run.config.dataset.exclude_class)
    flags = ctx.dataset.test_anomaly
    if held_out < 0 and flags is None:
        raise Skipped(
            "the run trained on every class (dataset.exclude_class=-1); train with "
            "--config.dataset.exclude_class=K to score class K as anomalies (or, for a table, "
            "--config.dataset.anomaly_column=COLUMN)"
        )
    score = ctx.eval_metrics["mse"]  # [N], reconstructions from the mean code for VAEs
    is_anomaly = flags[: len(score)] if flags is not None else ctx.y_eval == held_out
    what = "anomalies" if flags is not None else f"class {held_out}"
    if is_anomaly.all() or not is_anomaly.any():
        raise Skipped(f"the test examples evaluated do not contain both {what} and others")
    auc = float(metrics.roc_auc_score(is_anomaly, score))
    _plot_anomaly(ctx, score, is_anomaly, auc)
    result = {"held_out_class": held_out, "held_out_name": ctx.names[held_out]}
    if flags is not None:
        result = {"anomaly_column": ctx.run.config.dataset.anomaly_column}
    return {
        **result,
        "roc_auc": auc,
        "average_precision": float(metrics.average_precision_score(is_anomaly, score)),
        "mean_score_held_out": float(score[is_anomaly].mean()),
        "mean_score_trained": float(score[~is_anomaly].mean()),
        "examples": {"held_out": int(is_anomaly.sum()), "trained": int((~is_anomaly).sum())},
    }


def _plot_anomaly(ctx: Context, score: np.ndarray, is_anomaly: np.ndarray, auc: float) -> None:
    """Figure anomaly: score [N] histograms of held-out vs trained classes, and the ROC curve."""
    flagged = ctx.dataset.test_anomaly is not None  # a table's anomaly column, not a class
    name = "anomalies" if flagged else ctx.names[int(ctx.run.config.dataset.exclude_class)]
    fpr, tpr, _ = metrics.roc_curve(is_anomaly, score)
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(12, 4.5))
    bins = np.histogram_bin_edges(score, bins=50)
    ax0.hist(score[~is_anomaly], bins=bins, alpha=0.6, density=True, color="C0", label="trained")
    ax0.hist(score[is_anomaly], bins=bins, alpha=0.6, density=True, color="C3", label=name)
    ax0.set_xlabel("anomaly score: reconstruction MSE")
    ax0.set_ylabel("density")
    ax0.set_title(f"score of the held-out class {name!r} vs the trained classes")
    ax0.legend()
    ax1.plot(fpr, tpr, color="C3", label=f"ROC-AUC {auc:.3f}")
    ax1.plot([0, 1], [0, 1], color="gray", ls="--", label="chance")
    ax1.set_xlabel("false positive rate")
    ax1.set_ylabel("true positive rate")
    ax1.set_title("ROC of the reconstruction-error detector")
    ax1.legend()
    fig.tight_layout()
    ctx.save(fig, "anomaly")
