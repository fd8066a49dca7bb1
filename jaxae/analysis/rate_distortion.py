"""The rate–distortion study: the learned codec's real files beside JPEG, WebP and PNG.

Every rate is measured from bytes actually written: the codec's files (header included, and
its header shown separately), Pillow's JPEG (optimized Huffman tables) and WebP (method 6)
over their quality range, once as one file per image and once as all images tiled into one
large image (container and table overhead amortised), and PNG as the lossless reference.
Distortion is PSNR and MS-SSIM of the decoded uint8 images (jaxae/codec/quality.py).
"""

from __future__ import annotations

import io
import math

import numpy as np

from jaxae.codec import quality

QUALITIES = (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)
PILLOW = {"JPEG": {"optimize": True}, "WEBP": {"method": 6}, "PNG": {"optimize": True}}
MAX_EXAMPLES = 2000  # test images of the study inside python -m jaxae.analyze


def _pil(image: np.ndarray):
    from PIL import Image

    return Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)


def _roundtrip(image: np.ndarray, fmt: str, q: int | None) -> tuple[int, np.ndarray]:
    """(bytes, decoded uint8 [H, W, C]) of one image through Pillow's `fmt` at quality q."""
    from PIL import Image

    buf = io.BytesIO()
    options = dict(PILLOW[fmt], **({"quality": q} if q is not None else {}))
    _pil(image).save(buf, format=fmt, **options)
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        decoded = np.asarray(im.convert("L" if image.shape[-1] == 1 else "RGB"))
    return len(buf.getvalue()), decoded.reshape(image.shape)


def tile(images: np.ndarray) -> np.ndarray:
    """[N, H, W, C] -> one image [g·H, g·W, C] of a g×g grid, g = ceil(sqrt N), blanks black."""
    n, h, w, c = images.shape
    g = math.ceil(math.sqrt(n))
    canvas = np.zeros((g * g, h, w, c), images.dtype)
    canvas[:n] = images
    return canvas.reshape(g, g, h, w, c).transpose(0, 2, 1, 3, 4).reshape(g * h, g * w, c)


def untile(big: np.ndarray, n: int, shape: tuple[int, int, int]) -> np.ndarray:
    h, w, c = shape
    g = big.shape[0] // h
    return big.reshape(g, h, g, w, c).transpose(0, 2, 1, 3, 4).reshape(g * g, h, w, c)[:n]


def _row(method, setting, mode, bits, decoded, images, header_bits=0.0) -> dict:
    pixels = images.shape[1] * images.shape[2]
    psnr = quality.psnr(decoded, images)
    return {
        "method": method,
        "setting": setting,
        "mode": mode,
        "bpp": float(np.sum(bits) / (len(images) * pixels)),
        "header_bpp": float(header_bits / (len(images) * pixels)),
        "psnr": float(np.mean(psnr)) if np.all(np.isfinite(psnr)) else math.inf,
        "ms_ssim": float(np.mean(quality.ms_ssim(decoded, images))),
    }


def pillow_rows(images: np.ndarray) -> list[dict]:
    """JPEG and WebP at each quality and PNG, per image and tiled: images uint8 [N, H, W, C]."""
    rows = []
    for fmt, qualities in (("JPEG", QUALITIES), ("WEBP", QUALITIES), ("PNG", (None,))):
        for q in qualities:
            sizes, decoded = zip(*(_roundtrip(im, fmt, q) for im in images), strict=True)
            setting = f"q={q}" if q is not None else "lossless"
            rows.append(
                _row(fmt, setting, "per-image", np.array(sizes) * 8, np.stack(decoded), images)
            )
            size, big = _roundtrip(tile(images), fmt, q)
            rows.append(
                _row(
                    fmt,
                    setting,
                    "tiled",
                    size * 8,
                    untile(big, len(images), images.shape[1:]),
                    images,
                )
            )
    return rows


def codec_rows(codec, images: np.ndarray, name: str) -> tuple[list[dict], dict]:
    """The learned codec's per-image files: rows with header (per-image) and without
    (payload, the analogue of tiling), and {'estimated_bpp', 'payload_bpp'} to compare."""
    from jaxae.codec import bitstream

    files = [codec.compress(im) for im in images]
    decoded = np.stack([codec.decompress(f) for f in files])
    payload = np.array([len(bitstream.unpack(f, "file")[1]) for f in files]) * 8.0
    total = np.array([len(f) for f in files]) * 8.0
    header = float(np.sum(total - payload))
    rows = [
        _row(name, "files", "per-image", total, decoded, images, header_bits=header),
        _row(name, "payload only", "tiled", payload, decoded, images),
    ]
    pixels = len(images) * images.shape[1] * images.shape[2]
    estimate = sum(codec.estimated_bits(im) for im in images) / pixels
    return rows, {"estimated_bpp": estimate, "payload_bpp": float(payload.sum() / pixels)}


def bpp_at_psnr(rows: list[dict], method: str, mode: str, psnr: float) -> float | None:
    """`method`'s bpp at `psnr`, interpolated in log-rate over its quality ladder; None outside."""
    pts = sorted((r["psnr"], r["bpp"]) for r in rows if r["method"] == method and r["mode"] == mode)
    if not pts or not pts[0][0] <= psnr <= pts[-1][0]:
        return None
    p, b = zip(*pts, strict=True)
    return float(np.exp(np.interp(psnr, p, np.log(b))))


def comparison(rows: list[dict], codec_names: list[str]) -> list[dict]:
    """For each codec point: JPEG's and WebP's bpp at the same PSNR, same mode, and the ratio."""
    out = []
    for r in rows:
        if r["method"] not in codec_names:
            continue
        entry = {"method": r["method"], "mode": r["mode"], "psnr": r["psnr"], "bpp": r["bpp"]}
        for base in ("JPEG", "WEBP"):
            at = bpp_at_psnr(rows, base, r["mode"], r["psnr"])
            entry[f"{base.lower()}_bpp"] = at
            entry[f"bits_vs_{base.lower()}"] = r["bpp"] / at if at else None
        out.append(entry)
    return out


def markdown(rows: list[dict]) -> str:
    """The table: method, setting, mode, bpp (header part), PSNR, MS-SSIM."""
    lines = [
        "| method | setting | files | bpp | of which header | PSNR (dB) | MS-SSIM |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['setting']} | {r['mode']} | {r['bpp']:.3f} | "
            f"{r['header_bpp']:.3f} | {r['psnr']:.2f} | {r['ms_ssim']:.4f} |"
        )
    return "\n".join(lines)


def plot(rows: list[dict], codec_names: list[str], title: str):
    """PSNR and MS-SSIM against bpp (log axis), per-image files solid, tiled/payload dashed.

    The codec runs (a λ ladder) are one curve, each point labelled with its run's name."""
    from jaxae.analysis import figures

    plt = figures.plt
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    series = (("JPEG", ["JPEG"], "tab:red"), ("WEBP", ["WEBP"], "tab:green"))
    series += (("learned codec", list(codec_names), "tab:blue"),)
    for ax, metric in zip(axes, ("psnr", "ms_ssim"), strict=True):
        for label, methods, color in series:
            for mode, ls in (("per-image", "-"), ("tiled", "--")):
                pts = sorted(
                    (r["bpp"], r[metric], r["method"])
                    for r in rows
                    if r["method"] in methods and r["mode"] == mode
                )
                if not pts:
                    continue
                x, y, names = zip(*pts, strict=True)
                kind = "files" if mode == "per-image" else "tiled / payload"
                ax.plot(x, y, ls, marker="o", ms=3, color=color, label=f"{label} ({kind})")
                if label == "learned codec" and mode == "per-image":
                    for xi, yi, name in zip(x, y, names, strict=True):
                        ax.annotate(
                            name,
                            (xi, yi),
                            fontsize=7,
                            xytext=(4, -10),
                            textcoords="offset points",
                            color=color,
                        )
        for r in rows:
            if r["method"] == "PNG":
                ax.axvline(r["bpp"], color="k", lw=0.8, ls=":" if r["mode"] == "tiled" else "-.")
        ax.set_xscale("log")
        ax.set_xlabel("bits per pixel (log; PNG lossless: vertical lines)")
        ax.set_ylabel("PSNR (dB)" if metric == "psnr" else "MS-SSIM")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def rate_distortion(ctx) -> dict:
    """Learned codec only: real file sizes, PSNR and MS-SSIM of the test images beside JPEG,
    WebP (per-image files and tiled into one image) and PNG, at up to 2000 test images."""
    from jaxae import models
    from jaxae.analysis.context import Skipped
    from jaxae.codec.api import ImageCodec

    if not isinstance(ctx.run.model, models.Codec):
        raise Skipped(f"model {ctx.run.config.model.name!r} is not the learned codec ('codec')")
    n = min(len(ctx.x_eval), MAX_EXAMPLES)
    images = ctx.dataset.test_images[:n]
    rows, estimate = codec_rows(ImageCodec(ctx.run), images, "codec")
    rows += pillow_rows(images)
    ctx.save(
        plot(rows, ["codec"], f"{ctx.run.workdir.name}: rate–distortion, {n} test images"),
        "rate_distortion",
    )
    return {"examples": n, **estimate, "rows": rows, "vs_jpeg_webp": comparison(rows, ["codec"])}
