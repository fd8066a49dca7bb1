"""Parameter counts and variable trees of every model: exactly the ones the checkpoints hold,
whatever the ops bundle (plain Flax or jaxae.fast) and initialisation scheme."""

import json
import pathlib

import jax
import pytest
from model_testing import CIFAR, MNIST, abstract_init

from jaxae import models

# Every variable's path and shape before models.py became a package (generated from it), so
# checkpoints written then restore now.
TREES = json.loads((pathlib.Path(__file__).parent / "variable_trees.json").read_text())


def _num_params(name: str, **fields) -> int:
    model = models.create_model(name, **fields)
    _, variables = abstract_init(model, fields.get("image_shape", MNIST))
    return models.count_params(variables["params"])


def dense(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def conv(k: int, c_in: int, c_out: int) -> int:  # also a transposed conv
    return k * k * c_in * c_out + c_out


# ---------------------------------------------------------------------------------------------
# Parameter counts (trainable only: the params collection, BatchNorm scale and bias included)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("vanilla", 484_944),
        ("deep_fc", 1_144_880),
        ("conv_simple", 225),
        ("conv_deep", 83_905),
        ("conv_keras", 4_385),
    ],
)
def test_spec_parameter_counts(name, expected):
    assert _num_params(name) == expected


CONV_DEEP_BN = 2 * (16 + 32 + 64) * 2  # encoder and decoder BatchNorm scale + bias

HAND_COUNTS = [
    ("linear", {}, dense(784, 32) + dense(32, 784)),
    ("linear", {"tied": True}, dense(784, 32) + 784),
    ("linear", {"latent_dim": 10, "tied": True}, dense(784, 10) + 784),
    (
        "hinton",
        {},
        dense(784, 1000)
        + dense(1000, 500)
        + dense(500, 250)
        + dense(250, 30)
        + dense(30, 250)
        + dense(250, 500)
        + dense(500, 1000)
        + dense(1000, 784),
    ),
    (
        "conv_flat",
        {},
        conv(3, 1, 32)
        + conv(3, 32, 64)
        + dense(7 * 7 * 64, 64)
        + dense(64, 7 * 7 * 64)
        + conv(3, 64, 32)
        + conv(3, 32, 1),
    ),
    (
        "vae",
        {},
        dense(784, 512)
        + dense(512, 256)
        + 2 * dense(256, 16)
        + dense(16, 256)
        + dense(256, 512)
        + dense(512, 784),
    ),
    (
        "conv_vae",
        {},
        conv(3, 1, 16)
        + conv(3, 16, 32)
        + conv(3, 32, 64)
        + 2 * dense(3136, 128)
        + dense(128, 3136)
        + conv(3, 64, 32)
        + conv(3, 32, 16)
        + conv(3, 16, 1),
    ),
    # the conv_deep breakdown from the spec: encoder 23,520 incl. BN, decoder convs 60,161
    (
        "conv_deep",
        {},
        conv(3, 1, 16)
        + conv(3, 16, 32)
        + conv(3, 32, 64)
        + conv(3, 64, 64)
        + conv(3, 64, 32)
        + conv(3, 32, 16)
        + conv(3, 16, 1)
        + CONV_DEEP_BN,
    ),
    # options that only change the operation keep the 3×3 parameters
    ("conv_deep", {"upsample": "resize"}, 83_905),
    ("conv_deep", {"downsample": "strided"}, 83_905),
    ("conv_flat", {"upsample": "resize", "downsample": "maxpool"}, 442_177),
    ("conv_vae", {"upsample": "resize", "downsample": "maxpool"}, 1_254_145),
    ("conv_keras", {"downsample": "strided"}, 4_385),
    # skips widen the decoder inputs: dec_1 takes 64+32 channels, dec_2 32+16
    ("conv_deep", {"skip": True}, 83_905 + 9 * 32 * 32 + 9 * 16 * 16),
    ("conv_flat", {"skip": True}, 442_177 + 9 * 32 * 1),
    ("conv_simple", {"upsample": "resize"}, conv(3, 1, 16) + conv(3, 16, 1)),
    # kernel_size 5 widens every conv and transposed conv of conv_deep; BN is unchanged
    *(
        (
            "conv_deep",
            fields,
            sum(conv(5, a, b) for a, b in [(1, 16), (16, 32), (32, 64), (64, 64), (64, 32)])
            + conv(5, 32, 16)
            + conv(5, 16, 1)
            + CONV_DEEP_BN,
        )
        for fields in ({"kernel_size": 5}, {"kernel_size": 5, "upsample": "resize"})
    ),
    # CIFAR: only the first and the last conv see the 3 channels
    ("conv_deep", {"image_shape": CIFAR}, 83_905 - 145 - 160 + conv(3, 3, 16) + conv(3, 16, 3)),
    ("vanilla", {"image_shape": CIFAR}, 484_944 + (3072 - 784) * (256 + 257)),
]


@pytest.mark.parametrize("name, fields, expected", HAND_COUNTS)
def test_hand_computed_parameter_counts(name, fields, expected):
    assert _num_params(name, **fields) == expected


def test_count_params_ignores_batch_stats_when_given_params():
    model = models.create_model("conv_deep")
    _, variables = abstract_init(model, MNIST)
    assert models.count_params(variables["batch_stats"]) == CONV_DEEP_BN
    assert models.count_params(variables["params"]) == 83_905


def _variable_tree(model, image_shape) -> dict[str, list[int]]:
    _, variables = abstract_init(model, image_shape)
    leaves = jax.tree_util.tree_flatten_with_path(variables)[0]
    return {"/".join(k.key for k in path): list(leaf.shape) for path, leaf in leaves}


@pytest.mark.parametrize("case", TREES, ids=lambda c: f"{c['name']}-{json.dumps(c['fields'])}")
@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("init_scheme", ["flax", "pytorch"])
def test_variable_trees_are_the_checkpoints(case, fast, init_scheme):
    model = models.create_model(case["name"], fast=fast, init_scheme=init_scheme, **case["fields"])
    image_shape = tuple(case["fields"].get("image_shape", MNIST))
    assert _variable_tree(model, image_shape) == case["variables"]


def test_every_model_has_a_pinned_tree():
    assert {case["name"] for case in TREES} == set(models.MODELS)
