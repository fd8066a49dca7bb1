"""Uses of the codes: linear probe and k-means against pixels and PCA, and anomaly detection."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import cluster, decomposition, linear_model, metrics, pipeline, preprocessing

from jaxae import data
from jaxae.analysis import figures
from jaxae.analysis.context import Context, Skipped

plt = figures.plt


def downstream(ctx: Context) -> dict:
    """Linear-probe accuracy and k-means NMI: codes vs raw pixels vs PCA codes of equal size."""
    ds, lim = ctx.dataset, ctx.limits
    x_train = data.to_float(ds.train_images[: lim.probe_train])
    y_train = ds.train_labels[: lim.probe_train]
    n_test = min(lim.probe_test, len(ctx.x_eval))
    y_test = ctx.y_eval[:n_test]
    if len(np.unique(y_train)) < 2 or len(np.unique(y_test)) < 2:
        raise Skipped("the probe needs at least two classes in the train and test images")
    features, k_pca = feature_sets(ctx, x_train, n_test)
    result: dict[str, Any] = {
        "train_examples": len(x_train),
        "test_examples": n_test,
        "code_size": int(features["codes"][0].shape[1]),
        "pca_components": k_pca,
        "chance_accuracy": float(np.max(np.bincount(y_test)) / n_test),
    }
    for name, (f_train, f_test) in features.items():
        result[name] = score_features(f_train, y_train, f_test, y_test, ctx.run.config.seed)
    _plot_downstream(ctx, result, list(features), n_test)
    return result


def feature_sets(ctx: Context, x_train: np.ndarray, n_test: int) -> tuple[dict, int]:
    """{name: (train [N, F], test [n_test, F])} for the codes, raw pixels and PCA with as many
    components as the code has scalars (capped by the data), and that component count."""
    raw_train = x_train.reshape(len(x_train), -1)
    raw_test = ctx.x_eval[:n_test].reshape(n_test, -1)
    code_train = ctx.codes(x_train).reshape(len(x_train), -1)
    k_pca = min(code_train.shape[1], *raw_train.shape)
    pca = decomposition.PCA(n_components=k_pca, svd_solver=figures.pca_solver(raw_train))
    pca.fit(raw_train)
    features = {
        "codes": (code_train, ctx.eval_codes_flat[:n_test]),
        "raw pixels": (raw_train, raw_test),
        "PCA": (pca.transform(raw_train), pca.transform(raw_test)),
    }
    return features, k_pca


def score_features(
    f_train: np.ndarray, y_train: np.ndarray, f_test: np.ndarray, y_test: np.ndarray, seed: int
) -> dict:
    """Test accuracy of a standardised logistic regression fit on (f_train [N, F], y_train [N]),
    and the NMI of k-means (one cluster per test class) on f_test [M, F] against y_test [M]."""
    probe = pipeline.make_pipeline(
        preprocessing.StandardScaler(), linear_model.LogisticRegression(max_iter=500)
    ).fit(f_train, y_train)
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
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, (key, title) in zip(
        axes,
        (("linear_probe_accuracy", "linear-probe accuracy"), ("kmeans_nmi", "k-means NMI")),
        strict=True,
    ):
        vals = [result[n][key] for n in names]
        bars = ax.bar(names, vals, color=[figures.KIND_COLORS[n] for n in names])
        ax.bar_label(bars, fmt="%.3f")
        if key == "linear_probe_accuracy":
            ax.axhline(result["chance_accuracy"], color="gray", ls="--", label="majority class")
            ax.legend(fontsize=8)
        ax.set_ylim(0, 1.1)
        ax.set_ylabel(title)
        ax.set_title(f"{title} on {n_test} test images")
        ax.set_xticks(range(len(names)), [f"{n}\n({result[n]['dim']} dims)" for n in names])
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
