"""`python -m jaxae.study NAME --workdir DIR`: the convolutional tutorial's exercises as studies.

Each study is a set of arms (model configs) trained with several seeds into DIR/ARM/seedS,
then reported through `jaxae.compare` as mean ± std per arm with a conclusion sentence computed
from the table (DIR/report/report.html). Budgets are small by default (--steps, --seeds) and
every arm takes --config.FIELD=VALUE overrides. Rerunning resumes: finished runs are reused.
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import sys
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxae import config as config_lib
from jaxae import errors, models


class UnknownStudyError(errors.UserError, ValueError):
    """The study name is not one of STUDIES."""


@dataclasses.dataclass(frozen=True)
class Arm:
    """One arm: a label and the model section (name and fields) it trains."""

    label: str
    model: dict


@dataclasses.dataclass(frozen=True)
class Study:
    """The arms, the claim about their parameter counts (a sentence and a check that returns
    the failure, or None) and the extra measure added per run (column → fn(run, x))."""

    doc: str
    arms: tuple[Arm, ...]
    claim: str
    check: Callable[[dict[str, int]], str | None]
    measures: tuple[str, ...] = ()


def _equal(params: dict[str, int], pairs) -> str | None:
    bad = [f"{a} {params[a]:,} ≠ {b} {params[b]:,}" for a, b in pairs if params[a] != params[b]]
    return "; ".join(bad) or None


def _within(params: dict[str, int], a: str, b: str, margin: float) -> str | None:
    gap = abs(params[a] - params[b]) / params[b]
    return None if gap <= margin else f"{a} {params[a]:,} vs {b} {params[b]:,}: {gap:.1%}"


DEEP = (256, 128, 64)  # 784→256→128→64→32 and mirror
WIDE_MATCHED = 299  # 784→299→32→299→784: 1634·w + 816 params ≈ DEEP's 489,136 (+0.05%)
GRID = tuple((f, k) for f in ((8, 16, 32), (16, 32, 64)) for k in (2, 3))  # channels × depth

STUDIES: dict[str, Study] = {
    "stride_vs_pool": Study(
        "max-pool vs strided-conv downsampling on conv_simple and conv_deep",
        tuple(
            Arm(f"{m}_{d}", {"name": m, "downsample": d})
            for m in ("conv_simple", "conv_deep")
            for d in ("maxpool", "strided")
        ),
        "a stride-2 3×3 conv replaces conv + pool: equal parameter counts per family",
        lambda p: _equal(
            p,
            [
                ("conv_simple_maxpool", "conv_simple_strided"),
                ("conv_deep_maxpool", "conv_deep_strided"),
            ],
        ),
    ),
    "depth_vs_width": Study(
        "one wide hidden layer vs three narrow ones, code 32, at matched parameter counts",
        (
            Arm("deep_256_128_64", {"name": "vanilla", "hidden": DEEP, "latent_dim": 32}),
            Arm(
                f"wide_{WIDE_MATCHED}",
                {"name": "vanilla", "hidden": (WIDE_MATCHED,), "latent_dim": 32},
            ),
            Arm("wide_1024", {"name": "vanilla", "hidden": (1024,), "latent_dim": 32}),
        ),
        f"deep and wide_{WIDE_MATCHED} within 1% of each other; wide_1024 (the exercise's "
        "784→1024→32) is 3.4× larger, shown for reference",
        lambda p: _within(p, f"wide_{WIDE_MATCHED}", "deep_256_128_64", 0.01),
    ),
    "skips": Study(
        "conv_deep with U-Net skip connections vs none; MSE with the code zeroed",
        (
            Arm("no_skips", {"name": "conv_deep", "skip": False}),
            Arm("unet_skips", {"name": "conv_deep", "skip": True}),
        ),
        "skips widen the decoder's inputs (concatenated channels), so unet_skips has more",
        lambda p: None if p["unet_skips"] > p["no_skips"] else "skips added no parameters",
        ("zeroed_code_mse",),
    ),
    "upsampling": Study(
        "conv_deep decoders: transposed conv vs nearest resize + conv; checkerboard energy",
        (
            Arm("transpose", {"name": "conv_deep", "upsample": "transpose"}),
            Arm("resize", {"name": "conv_deep", "upsample": "resize"}),
        ),
        "both decoders use 3×3 kernels with the same channels: equal parameter counts",
        lambda p: _equal(p, [("transpose", "resize")]),
        ("checkerboard_energy", "checkerboard_energy_of_originals"),
    ),
    "architecture": Study(
        "conv_deep channel counts × depth (kernel size is fixed at 3×3 by the model)",
        tuple(Arm(f"c{f[0]}_d{k}", {"name": "conv_deep", "features": f[:k]}) for f, k in GRID),
        "more channels or blocks, more parameters: each arm's count grows along both axes",
        lambda p: (
            None
            if p["c16_d2"] > p["c8_d2"] and p["c16_d3"] > p["c8_d3"]
            else "channel counts do not order the parameter counts"
        ),
    ),
}


def arm_config(arm: Arm, seed: int, overrides: list[str]) -> ml_collections.ConfigDict:
    """The training config of `arm` at `seed`: MSE on Fashion-MNIST, 300 steps, then overrides."""
    c = config_lib.default_config()
    fields = dict(arm.model)
    c.model = config_lib.model_config(fields.pop("name"), **fields)
    c.loss = "mse"
    c.num_steps = 300
    c.seed = seed
    c.progress = False
    config_lib.apply_overrides(c, overrides)
    return config_lib.validate(c)


def param_counts(study: Study, overrides: list[str] = ()) -> dict[str, int]:
    """arm label → trainable parameters, by shape inference (nothing trained or computed)."""
    out = {}
    for arm in study.arms:
        c = arm_config(arm, 0, list(overrides))
        fields = dict(c.model)
        model = models.create_model(fields.pop("name"), **fields)
        shape = (1, *tuple(c.model.get("image_shape", (28, 28, 1))))
        variables = jax.eval_shape(
            lambda m=model, s=shape: m.init(jax.random.PRNGKey(0), jnp.zeros(s), train=False)
        )
        out[arm.label] = models.count_params(variables["params"])
    return out


def measure(name: str, run, x: np.ndarray) -> float:
    """The study measure `name` of a loaded run on test images x [N, H, W, C]."""
    from jaxae import measures

    if name == "zeroed_code_mse":
        return measures.zeroed_code_mse(run, x)
    if name == "checkerboard_energy":
        recon = np.concatenate(
            [np.asarray(run.reconstruct(x[i : i + 250])) for i in range(0, len(x), 250)]
        )
        return measures.checkerboard_energy(recon)
    if name == "checkerboard_energy_of_originals":
        return measures.checkerboard_energy(x)
    raise ValueError(f"unknown measure {name!r}")


def run_study(
    name: str,
    workdir: str | pathlib.Path,
    *,
    seeds: tuple[int, ...] = (0, 1),
    overrides: list[str] = (),
    max_examples: int = 1000,
) -> dict:
    """Trains every arm × seed of STUDIES[name] into workdir/ARM/seedS (finished runs reused),
    then writes workdir/report/ through jaxae.compare; returns its compare.json content."""
    from jaxae import compare, data, train  # a study trains; `import jaxae.study` stays light
    from jaxae.analysis.load import load

    if name not in STUDIES:
        raise UnknownStudyError(f"no study {name!r}; choose one of {', '.join(STUDIES)}")
    study, workdir, overrides = STUDIES[name], pathlib.Path(workdir), list(overrides)
    params = param_counts(study, overrides)
    failed = study.check(params)
    runs, arms, extra = [], {}, {}
    for arm in study.arms:
        for seed in seeds:
            wd = workdir / arm.label / f"seed{seed}"
            config = arm_config(arm, seed, overrides)
            if not (wd / "summary.json").exists():
                print(f"{name}: training {arm.label} seed {seed}", flush=True)
                train.train_and_evaluate(config, wd)
            runs.append(wd)
            arms[f"{arm.label}/seed{seed}"] = arm.label
    if study.measures:
        ds = data.load_for_config(config)
        x = data.to_float(ds.test_images[:max_examples])
        for wd in runs:
            run = load(wd)
            key = f"{wd.parent.name}/{wd.name}"
            extra[key] = {m: measure(m, run, x) for m in study.measures}
    out = workdir / "report"
    result = compare.compare(
        runs, out, max_examples=max_examples, arms=arms, extra=extra, title=f"study {name}"
    )
    result["study"] = {"name": name, "doc": study.doc, "claim": study.claim, "seeds": list(seeds)}
    result["study"]["params"] = params
    result["study"]["claim_holds"] = failed is None
    if failed:
        result["study"]["claim_failure"] = failed  # e.g. overrides that change the models
    if name == "architecture":
        result["figures"].append(mse_vs_params(result, out))
    result["conclusion"] = conclusion(name, result)
    compare.write(result, out)
    return result


def conclusion(name: str, result: dict) -> str:
    """The measured sentence of a study, from its per-arm means ± stds."""
    arms = result["arms"]
    order = sorted(arms, key=lambda a: arms[a]["mse"][0])
    best, nxt = order[0], order[1]
    gap = arms[nxt]["mse"][0] - arms[best]["mse"][0]
    spread = max(arms[best]["mse"][1], arms[nxt]["mse"][1])
    seeds = len(result["study"]["seeds"])
    verdict = (
        f"{gap / spread:.1f}× the larger seed std" if spread > 0 else "with no seed spread (1 seed)"
    )
    text = (
        f"Lowest test MSE: {best} {_pm(arms[best]['mse'])}, then {nxt} {_pm(arms[nxt]['mse'])} "
        f"({seeds} seeds each, {int(arms[best]['steps'][0])} steps): a gap of {gap:.2g}, {verdict}."
    )
    if name == "depth_vs_width":
        text += " At matched parameter counts: " + _versus(
            arms, f"wide_{WIDE_MATCHED}", "deep_256_128_64"
        )
    if name == "stride_vs_pool":
        text += " Per family: " + "; ".join(
            _versus(arms, f"{m}_strided", f"{m}_maxpool") for m in ("conv_simple", "conv_deep")
        )
    if name == "skips":
        s, n = arms["unet_skips"], arms["no_skips"]
        ratio = s["zeroed_code_mse"][0] / s["mse"][0]
        text += (
            f" With the code zeroed, unet_skips still reconstructs at MSE "
            f"{_pm(s['zeroed_code_mse'])} ({ratio:.1f}× its normal MSE) while no_skips falls to "
            f"{_pm(n['zeroed_code_mse'])}: "
            + ("the skips bypass the bottleneck." if ratio < 3 else "the code still carries most.")
        )
    if name == "upsampling":
        t, r = arms["transpose"], arms["resize"]
        text += (
            f" Checkerboard energy (share of the spectrum at the stride-2 frequencies): transpose "
            f"{_pm(t['checkerboard_energy'], '.2e')}, resize "
            f"{_pm(r['checkerboard_energy'], '.2e')}, the test images themselves "
            f"{t['checkerboard_energy_of_originals'][0]:.2e}."
        )
    return text


def _versus(arms: dict, a: str, b: str) -> str:
    """'a m ± s vs b m ± s: WINNER lower by g, k× the larger seed std' on test MSE."""
    (ma, sa), (mb, sb) = arms[a]["mse"], arms[b]["mse"]
    winner, gap, spread = (a if ma < mb else b), abs(ma - mb), max(sa, sb)
    times = f"{gap / spread:.1f}× the larger seed std" if spread > 0 else "no seed spread"
    return (
        f"{a} ({int(arms[a]['params'][0]):,} params) {_pm(arms[a]['mse'])} vs {b} "
        f"({int(arms[b]['params'][0]):,}) {_pm(arms[b]['mse'])}: {winner} lower by {gap:.2g}, "
        f"{times}."
    )


def _pm(stat: list[float], fmt: str = ".4g") -> str:
    return f"{stat[0]:{fmt}} ± {stat[1]:{fmt}}"


def mse_vs_params(result: dict, out: pathlib.Path) -> str:
    """Figure study_mse_vs_params: each arm's mean test MSE (± std) against its parameters."""
    from jaxae.analysis import figures

    plt = figures.plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (arm, s) in enumerate(result["arms"].items()):
        ax.errorbar(
            s["params"][0], s["mse"][0], yerr=s["mse"][1], fmt="o", color=f"C{i}", label=arm
        )
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters")
    ax.set_ylabel("test MSE (mean ± std over seeds)")
    ax.legend(fontsize=8)
    ax.set_title("architecture grid: MSE against parameter count")
    return figures.save(fig, out / "study_mse_vs_params.png")


def main(argv: list[str]) -> None:
    """The command line; user errors exit 2 with one line."""
    parser = argparse.ArgumentParser(prog="python -m jaxae.study", description=__doc__)
    parser.add_argument("name", help=f"one of: {', '.join(STUDIES)}")
    parser.add_argument("--workdir", required=True, help="where the arms' runs and report go")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per arm (0..N-1)")
    parser.add_argument("--steps", type=int, default=300, help="training steps per run")
    parser.add_argument("--max_examples", type=int, default=1000, help="test images scored")
    args, rest = parser.parse_known_args(argv)
    bad = [a for a in rest if not a.startswith("--config.")]
    if bad:
        parser.error(f"unexpected arguments {bad}; overrides look like --config.FIELD=VALUE")
    overrides = [f"num_steps={args.steps}", *(a.removeprefix("--config.") for a in rest)]
    with errors.one_line_errors():
        result = run_study(
            args.name,
            args.workdir,
            seeds=tuple(range(args.seeds)),
            overrides=overrides,
            max_examples=args.max_examples,
        )
    print(result["conclusion"])
    print(f"wrote {pathlib.Path(args.workdir) / 'report' / 'report.html'}")


if __name__ == "__main__":
    main(sys.argv[1:])
