"""Run's methods take uint8 pixels (scaled as training does) or floats in [0, 1]; anything else is
one InputError line."""

import jax.numpy as jnp
import numpy as np
import pytest

import jaxae
from jaxae import data
from jaxae.analysis.inputs import InputError


@pytest.fixture(scope="module")
def run_and_pixels(linear_run):
    ds = data.load_dataset("synthetic", max_train_examples=64, max_test_examples=8)
    return jaxae.load(linear_run[1]), ds.test_images  # uint8 [8, 28, 28, 1]


def test_uint8_and_float_images_give_the_same_outputs(run_and_pixels):
    run, pixels = run_and_pixels
    floats = data.to_float(pixels)
    assert pixels.dtype == np.uint8 and pixels.max() > 1  # real 0..255 pixels
    for method in (run.reconstruct, run.logits, run.code):
        np.testing.assert_array_equal(method(pixels), method(floats))
        np.testing.assert_array_equal(method(jnp.asarray(pixels)), method(floats))
    np.testing.assert_array_equal(
        run.reconstruct(floats.astype(np.float64)), run.reconstruct(floats)
    )
    z = run.code(pixels)
    assert run.code_shape == (8,) and z.shape == (8, 8)
    np.testing.assert_allclose(run.decode(z), run.reconstruct(pixels), rtol=1e-6)
    np.testing.assert_array_equal(run.decode(np.asarray(z, np.float64)), run.decode(z))


BAD_IMAGES = {
    "int64 pixels": (lambda p: p.astype(np.int64), "dtype int64: .* uint8 pixels 0..255 or floats"),
    "bool": (lambda p: p > 0, "dtype bool"),
    "floats 0..255": (lambda p: p.astype(np.float32), "span \\[0, 2.*divide by 255"),
    "negative floats": (lambda p: data.to_float(p) - 0.5, "span \\[-0.5, "),
    "NaN": (lambda p: np.full(p.shape, np.nan, np.float32), "NaN or inf"),
    "one image": (lambda p: data.to_float(p)[0], "one image; .* pass x\\[None\\]"),
    "no channel axis": (lambda p: data.to_float(p)[..., 0], "no channel axis; .* x\\[..., None\\]"),
    "empty batch": (lambda p: data.to_float(p)[:0], "an empty batch"),
    "other size": (lambda p: np.zeros((2, 32, 32, 1), np.float32), "\\[B, 28, 28, 1\\]"),
}


@pytest.mark.parametrize("case", BAD_IMAGES)
def test_other_images_are_one_error_line(run_and_pixels, case):
    run, pixels = run_and_pixels
    make, message = BAD_IMAGES[case]
    for method in (run.reconstruct, run.code, run.encode, run.logits):
        with pytest.raises(InputError, match=message) as e:
            method(make(pixels))
        assert len(str(e.value).splitlines()) == 1


@pytest.mark.parametrize(
    "z, message",
    [
        (np.zeros((2, 7), np.float32), "shape \\(2, 7\\): the decoder takes \\[B, 8\\]"),
        (np.zeros(8, np.float32), "shape \\(8,\\)"),
        (np.zeros((2, 8), np.int32), "dtype int32: the decoder takes floats"),
    ],
)
def test_decode_refuses_codes_of_another_shape_or_dtype(run_and_pixels, z, message):
    run, _ = run_and_pixels
    with pytest.raises(InputError, match=message):
        run.decode(z)
