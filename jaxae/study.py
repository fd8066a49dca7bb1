"""`python -m jaxae.study NAME --workdir DIR`: the convolutional tutorial's exercises as studies.

Each study is a set of arms (model configs) trained with several seeds into DIR/ARM/seedS,
then reported through `jaxae.compare` as mean ± std per arm with a conclusion sentence computed
from the table (DIR/report/report.html). Budgets are small by default (--steps, --seeds) and
every arm takes --config.FIELD=VALUE overrides. Rerunning resumes: finished runs are reused.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxae import config as config_lib
from jaxae import errors, models
from jaxae.study_arms import STUDIES, WIDE_MATCHED, Arm, Study


class UnknownStudyError(errors.UserError, ValueError):
    """The study name is not one of STUDIES."""


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
    """The measured sentence of a study, from its per-arm means ± stds: a difference is called
    one only where the arms' mean ± std intervals are apart (see `apart`)."""
    arms = result["arms"]
    order = sorted(arms, key=lambda a: arms[a]["mse"][0])
    best, nxt = order[0], order[1]
    seeds = len(result["study"]["seeds"])
    text = (
        f"Lowest test MSE: {best} {_pm(arms[best]['mse'])}, then {nxt} {_pm(arms[nxt]['mse'])} "
        f"({seeds} seeds each, {int(arms[best]['steps'][0])} steps): "
        f"{_verdict(arms[best]['mse'], arms[nxt]['mse'], seeds)}."
    )
    if name == "depth_vs_width":
        text += (
            " At matched parameter counts: "
            + _versus(arms, f"wide_{WIDE_MATCHED}", "deep_256_128_64", seeds)
            + "."
        )
    if name == "stride_vs_pool":
        text += (
            " Per family: "
            + "; ".join(
                _versus(arms, f"{m}_strided", f"{m}_maxpool", seeds)
                for m in ("conv_simple", "conv_deep")
            )
            + "."
        )
    if name == "skips":
        text += " " + _skips_sentence(arms, seeds)
    if name == "upsampling":
        text += " " + _upsampling_sentence(arms, seeds)
    if name == "architecture":
        text += " " + _architecture_sentence(arms, seeds)
    return text


def apart(a: list[float], b: list[float]) -> bool:
    """Whether the intervals mean ± std of a and b ([mean, std] each) do not overlap."""
    return abs(a[0] - b[0]) > a[1] + b[1]


def _verdict(lower: list[float], higher: list[float], seeds: int) -> str:
    """'a gap of g, k× the larger seed std' when the intervals are apart, else why none."""
    if seeds < 2:
        return "1 seed, so no spread to judge the gap by (run --seeds 2 or more)"
    if not apart(lower, higher):
        return "no measurable difference (the mean ± std intervals overlap)"
    gap, spread = higher[0] - lower[0], max(lower[1], higher[1])
    return f"a gap of {gap:.2g}, {gap / spread:.1f}× the larger seed std"


def _versus(arms: dict, a: str, b: str, seeds: int) -> str:
    """'a (P params) m ± s vs b (P) m ± s: VERDICT' on test MSE, the winner named when apart."""
    lo, hi = sorted((a, b), key=lambda arm: arms[arm]["mse"][0])
    verdict = _verdict(arms[lo]["mse"], arms[hi]["mse"], seeds)
    if verdict.startswith("a gap"):
        verdict = f"{lo} lower by " + verdict.removeprefix("a gap of ")
    return (
        f"{a} ({int(arms[a]['params'][0]):,} params) {_pm(arms[a]['mse'])} vs {b} "
        f"({int(arms[b]['params'][0]):,}) {_pm(arms[b]['mse'])}: {verdict}"
    )


def _skips_sentence(arms: dict, seeds: int) -> str:
    """The zeroed-code MSEs; 'the skips bypass the bottleneck' only when unet_skips' is
    measurably below no_skips' and within 3× its own normal MSE."""
    s, n = arms["unet_skips"], arms["no_skips"]
    zs, zn = s["zeroed_code_mse"], n["zeroed_code_mse"]
    ratio = zs[0] / s["mse"][0]
    if seeds >= 2 and apart(zs, zn) and zs[0] < zn[0]:
        end = "the skips bypass the bottleneck." if ratio < 3 else "the code still carries most."
    else:
        end = "no measurable difference between them with the code zeroed."
    return (
        f"With the code zeroed, unet_skips reconstructs at MSE {_pm(zs)} ({ratio:.1f}× its "
        f"normal MSE) and no_skips at {_pm(zn)}: {end}"
    )


def _upsampling_sentence(arms: dict, seeds: int) -> str:
    """The checkerboard energies of both decoders and of the test images, and which is higher."""
    t, r = arms["transpose"]["checkerboard_energy"], arms["resize"]["checkerboard_energy"]
    if seeds >= 2 and apart(t, r):
        hi, lo = ("transpose", "resize") if t[0] > r[0] else ("resize", "transpose")
        end = f"{hi}'s is {max(t[0], r[0]) / min(t[0], r[0]):.1f}× {lo}'s."
    else:
        end = "no measurable difference between the decoders."
    return (
        f"Checkerboard energy (share of the spectrum at the stride-2 frequencies): transpose "
        f"{_pm(t, '.2e')}, resize {_pm(r, '.2e')}, the test images themselves "
        f"{arms['transpose']['checkerboard_energy_of_originals'][0]:.2e}: {end}"
    )


def _architecture_sentence(arms: dict, seeds: int) -> str:
    """Per grid axis, of the arm pairs that differ only there: how often the larger arm has
    the lower mean MSE, and how often measurably (intervals apart)."""
    from jaxae.study_arms import CHANNELS, DEPTHS, GRID, KERNELS, grid_label

    axes = (
        (f"channels {CHANNELS[0][0]}→{CHANNELS[1][0]}", 0, CHANNELS),
        (f"blocks {DEPTHS[0]}→{DEPTHS[1]}", 1, DEPTHS),
        (f"kernel {KERNELS[0]}→{KERNELS[1]}", 2, KERNELS),
    )
    parts = []
    for text, axis, values in axes:
        pairs = []
        for cell in GRID:
            if cell[axis] == values[0]:
                up = tuple(values[1] if i == axis else v for i, v in enumerate(cell))
                pairs.append((arms[grid_label(*cell)]["mse"], arms[grid_label(*up)]["mse"]))
        lower = sum(b[0] < a[0] for a, b in pairs)
        sure = [apart(a, b) and seeds >= 2 for a, b in pairs]
        sure_lower = sum(s and b[0] < a[0] for s, (a, b) in zip(sure, pairs, strict=True))
        parts.append(
            f"{text} lowers the mean MSE in {lower} of {len(pairs)} pairs ({sure_lower} with "
            f"the mean ± std intervals apart) and raises it in {len(pairs) - lower} "
            f"({sum(sure) - sure_lower} apart)"
        )
    return (
        "Per axis, of the arm pairs differing only there: " + "; ".join(parts) + ". Blocks also "
        "set the code: 2 end at 7×7, 3 at 3×3 (code_size in the table)."
    )


def _pm(stat: list[float], fmt: str = ".4g") -> str:
    return f"{stat[0]:{fmt}} ± {stat[1]:{fmt}}"


def mse_vs_params(result: dict, out: pathlib.Path) -> str:
    """Figure study_mse_vs_params: each arm's mean test MSE (± std) against its parameters;
    colour: blocks (they also set the code size), marker: kernel size, each point labelled."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    from jaxae.analysis import figures
    from jaxae.study_arms import DEPTHS, GRID, KERNELS, grid_label

    plt = figures.plt
    colour = {d: f"C{i}" for i, d in enumerate(DEPTHS)}
    marker = dict(zip(KERNELS, "os", strict=True))
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for f, d, k in GRID:
        label = grid_label(f, d, k)
        s = result["arms"][label]
        x, (y, err) = s["params"][0], s["mse"]
        ax.errorbar(x, y, yerr=err, fmt=marker[k], color=colour[d], capsize=3)
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(6, 4), fontsize=7)
    codes = {
        d: " or ".join(
            f"{c:,}"
            for c in sorted(
                {int(s["code_size"][0]) for a, s in result["arms"].items() if f"_d{d}_" in a}
            )
        )
        for d in DEPTHS
    }
    handles = [
        Line2D([], [], color=colour[d], marker="o", ls="", label=f"{d} blocks (code {codes[d]})")
        for d in DEPTHS
    ] + [Line2D([], [], color="k", marker=marker[k], ls="", label=f"{k}×{k}") for k in KERNELS]
    ax.legend(handles=handles, fontsize=8)
    ax.set_xscale("log")
    ax.margins(x=0.15)  # room for the labels of the outermost points
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 3.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.xaxis.set_minor_formatter(NullFormatter())  # 2×10³, 3×10³... overlapped
    ax.set_xlabel("trainable parameters (log scale)")
    seeds = len(result["study"]["seeds"])
    ax.set_ylabel(f"test MSE (bars: ± std over {seeds} seeds)")
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
    from jaxae import config_file

    args, overrides = config_file.parse_with_overrides(parser, argv)
    overrides = [f"num_steps={args.steps}", *overrides]
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
