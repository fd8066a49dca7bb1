"""The rate–distortion study's pieces: tiling, Pillow's rows, interpolation, MS-SSIM."""

import dm_pix
import jax.numpy as jnp
import numpy as np

from jaxae.analysis import rate_distortion as rd
from jaxae.codec import quality

from .conftest import images


def test_tiling_is_undone_exactly():
    x = images(7)
    big = rd.tile(x)
    assert big.shape == (3 * 28, 3 * 28, 1)
    np.testing.assert_array_equal(rd.untile(big, 7, x.shape[1:]), x)


def test_pillow_rows_measure_real_bytes_and_png_is_lossless():
    x = images(4)
    rows = rd.pillow_rows(x)
    png = [r for r in rows if r["method"] == "PNG"]
    assert {r["mode"] for r in png} == {"per-image", "tiled"}
    assert all(r["psnr"] == float("inf") and abs(r["ms_ssim"] - 1) < 1e-5 for r in png)
    jpeg = sorted(
        (r for r in rows if r["method"] == "JPEG" and r["mode"] == "per-image"),
        key=lambda r: r["bpp"],
    )
    assert jpeg[0]["psnr"] < jpeg[-1]["psnr"]  # more bits, less error
    one = rows[0]  # JPEG q=5, per image: its bytes recomputed here
    sizes = [rd._roundtrip(im, "JPEG", 5)[0] for im in x]
    assert one["setting"] == "q=5" and one["bpp"] == sum(sizes) * 8 / (4 * 28 * 28)


def test_bpp_at_psnr_interpolates_in_log_rate_and_refuses_to_extrapolate():
    rows = [
        {"method": "JPEG", "mode": "tiled", "psnr": 20.0, "bpp": 1.0},
        {"method": "JPEG", "mode": "tiled", "psnr": 30.0, "bpp": 4.0},
    ]
    assert abs(rd.bpp_at_psnr(rows, "JPEG", "tiled", 25.0) - 2.0) < 1e-12
    assert rd.bpp_at_psnr(rows, "JPEG", "tiled", 31.0) is None


def test_ms_ssim_is_one_on_identical_images_and_ssim_at_one_scale():
    x = images(3)
    noisy = np.clip(x + np.random.default_rng(1).integers(-40, 40, x.shape), 0, 255).astype(
        np.uint8
    )
    np.testing.assert_allclose(quality.ms_ssim(x, x), 1.0, atol=1e-5)
    assert quality.num_scales(28, 28) == 3 and quality.num_scales(256, 256) == 5
    single = quality.ms_ssim(noisy, x, scales=1)
    ref = dm_pix.ssim(
        jnp.asarray(noisy, jnp.float32) / 255, jnp.asarray(x, jnp.float32) / 255, filter_size=7
    )
    np.testing.assert_allclose(single, ref, rtol=1e-4)
    assert np.all(quality.ms_ssim(noisy, x) < 1)
