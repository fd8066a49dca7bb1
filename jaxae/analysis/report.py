"""report.html of an analysis (every figure and number, the config and summary) and its JSON."""

from __future__ import annotations

import html
import json
import math
import pathlib
from typing import Any

import numpy as np

from jaxae import config as config_lib
from jaxae.analysis import files
from jaxae.analysis.load import Run


def jsonable(x: Any) -> Any:
    """numpy → Python; NaN/inf → strings (JSON has none)."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, float | np.floating):
        return float(x) if math.isfinite(x) else str(float(x))
    return x


_CSS = """
body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em} h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
img{max-width:100%;border:1px solid #eee;margin:.5em 0} pre{background:#f6f6f6;padding:.8em;
overflow-x:auto;font-size:.85em} table{border-collapse:collapse} td,th{padding:.2em .8em;
border-bottom:1px solid #eee;text-align:left} .skip{color:#888;font-style:italic}
nav{display:flex;flex-wrap:wrap;gap:.3em 1em}
"""


def _table(d: dict) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>"
        for k, v in d.items()
        if not isinstance(v, dict | list)
    )
    return f"<table>{rows}</table>" if rows else ""


def _fmt(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def write_report(run: Run, out: dict, path: pathlib.Path, docs: dict[str, str]) -> None:
    """report.html: every figure (relative paths), the numbers, config.json and summary.json.

    `out` is analysis.json's content; docs[name] is the paragraph shown under each analysis.
    A finetune.json beside the report (python -m jaxae.finetune) adds its accuracy table.
    """
    finetune = files.read_json_object(
        path.parent / "finetune.json",
        "the report leaves the finetune table out",
        lambda d: isinstance(d.get("test_accuracy"), dict) and isinstance(d.get("labels"), dict),
    )
    parts = _head(run, out, ["finetune"] if finetune else [])
    for name, entry in out["analyses"].items():
        parts += _section(name, entry, docs.get(name, ""))
    if finetune:
        parts += finetune_section(finetune)
    parts.append("</body></html>")
    files.write_text(path, "\n".join(parts) + "\n")


def finetune_table(out: dict) -> str:
    """finetune.json's accuracies as a table: settings as rows, label fractions as columns."""
    cols = list(out["labels"])
    head = "".join(f"<th>{html.escape(c)} ({out['labels'][c]:,})</th>" for c in cols)
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td>"
        + "".join(f"<td>{r[c]:.4f}</td>" for c in cols)
        + "</tr>"
        for name, r in out["test_accuracy"].items()
    )
    return f"<table border=1><tr><th>encoder + head</th>{head}</tr>{rows}</table>"


def finetune_text(out: dict) -> str:
    """What finetune.json's numbers are: the paragraph above its table."""
    return (
        f"Test accuracy on {out['test_examples']:,} test images after {out['steps']} Adam "
        f"steps per setting (columns: label fraction, with the labelled training examples). "
        f"frozen/finetuned: the run's encoder (checkpoint step {out['step']}); scratch: the same "
        f"network re-initialised; pixels: the head on raw pixels."
    )


def finetune_section(out: dict) -> list[str]:
    """The report's finetune section: heading, what the numbers are, the table."""
    return [
        "<h2 id='finetune'>transfer learning (finetune.json)</h2>",
        f"<p>{html.escape(finetune_text(out))}</p>",
        finetune_table(out),
    ]


def _head(run: Run, out: dict, more: list[str]) -> list[str]:
    """The title, navigation (`more`: sections after the analyses), summary.json table and
    config of the report."""
    summary = files.read_json_object(run.workdir / "summary.json", "the report shows none")
    return [
        f"<!doctype html><html><head><meta charset='utf-8'><title>jaxae analysis: "
        f"{html.escape(run.workdir.name)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(out['model'])} on {html.escape(out['dataset'])}: analysis of "
        f"{html.escape(run.workdir.name)}</h1>",
        f"<p>Workdir <code>{html.escape(out['workdir'])}</code>, checkpoint step {out['step']}. "
        "Every number is also in <a href='analysis.json'>analysis.json</a>.</p>",
        _code_line(out.get("code")),
        "<nav>"
        + "".join(f"<a href='#{n}'>{n}</a>" for n in ["summary", "config", *out["analyses"], *more])
        + "</nav>",
        "<h2 id='summary'>Summary (summary.json)</h2>",
        _table(summary) if summary else "<p class='skip'>no summary.json: training unfinished</p>",
        "<h2 id='config'>Config</h2><details><summary>config of the checkpoint</summary><pre>"
        + html.escape(config_lib.to_json(run.config))
        + "</pre></details>",
    ]


def _code_line(code: dict | None) -> str:
    """'Code: 3×3×64 = 576 numbers for 28×28×1 = 784 inputs: 1.36× compression'."""
    if not code:
        return ""
    image = "×".join(map(str, code["input_shape"]))
    return (
        f"<p class='code'><b>Code: {html.escape(code['code_text'])} numbers</b> for "
        f"{image} = {code['input_numbers']} input numbers: <b>{code['compression']:.2f}× "
        f"compression</b> (input numbers per code number).</p>"
    )


def _section(name: str, entry: dict, doc: str) -> list[str]:
    """One analysis: its heading and doc, then its figures and numbers (or why it was skipped)."""
    parts = [f"<h2 id='{name}'>{name.replace('_', ' ')}</h2><p>{html.escape(doc)}</p>"]
    if "skipped" in entry:
        return [*parts, f"<p class='skip'>skipped: {html.escape(entry['skipped'])}</p>"]
    for fig in entry["figures"]:
        parts.append(f"<img src='{html.escape(fig)}' alt='{html.escape(fig)}'>")
    numbers = entry["numbers"]
    parts.append(_table(numbers))
    parts.append(
        "<details><summary>all numbers</summary><pre>"
        + html.escape(json.dumps(numbers, indent=2))
        + "</pre></details>"
    )
    return parts
