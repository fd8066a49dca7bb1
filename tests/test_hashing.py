"""Semantic hashing: Hamming retrieval, LSH / PCA / ITQ baselines, and the binary code."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxae import hashing, models


def _toy(n_per=20, bits=16, seed=0):
    """4 classes, each a fixed 16-bit pattern ≥ 8 bits from the others, copies with one flip."""
    rng = np.random.default_rng(seed)
    patterns = np.array([[1] * 16, [0] * 16, [1, 0] * 8, [0, 1] * 8], bool)
    labels = np.repeat(np.arange(4), n_per)
    bits_ = patterns[labels].copy()
    bits_[np.arange(len(labels)), rng.integers(0, bits, len(labels))] ^= True
    return bits_, labels


def test_hamming_counts_differing_bits():
    rng = np.random.default_rng(1)
    a, b = rng.random((5, 12)) > 0.5, rng.random((7, 12)) > 0.5
    want = (a[:, None, :] != b[None, :, :]).sum(-1)
    np.testing.assert_array_equal(hashing.hamming(a, b), want)


def test_known_neighbours_give_precision_one():
    db, db_labels = _toy(seed=0)
    q, q_labels = _toy(n_per=5, seed=1)
    out = hashing.retrieval(q, q_labels, db, db_labels, ks=(10, 20), chunk=7)
    assert out == {"precision@10": 1.0, "precision@20": 1.0, "mAP": 1.0}
    shuffled = hashing.retrieval(q, np.roll(q_labels, 5), db, db_labels, ks=(20,))
    assert shuffled["precision@20"] == 0.0  # every query now asks for another class


def test_map_of_a_known_ranking():
    """One query, database at distances 0, 1, 2, 3 with relevance 1, 0, 1, 0: AP = (1 + 2/3)/2."""
    q = np.zeros((1, 3), bool)
    db = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [1, 1, 1]], bool)
    out = hashing.retrieval(q, np.array([0]), db, np.array([0, 1, 0, 1]), ks=(1, 2))
    assert out["mAP"] == pytest.approx((1 + 2 / 3) / 2)
    assert out["precision@1"] == 1.0 and out["precision@2"] == 0.5


def _clusters(n_per, d=50, seed=0):
    """4 Gaussian clusters at (±10, ±6, 0, ...) in d dimensions, noise std 0.5: labels 0..3."""
    rng = np.random.default_rng(seed)
    centres = np.zeros((4, d))
    centres[:, :2] = [[10, 6], [10, -6], [-10, 6], [-10, -6]]
    labels = np.repeat(np.arange(4), n_per)
    return centres[labels] + 0.5 * rng.normal(size=(len(labels), d)), labels


@pytest.mark.parametrize("method", ["lsh", "pca", "itq"])
def test_baselines_retrieve_separated_clusters(method):
    """Two principal bits (PCA, ITQ) or 64 random hyperplanes (LSH) separate the quadrants."""
    train, y_train = _clusters(50, seed=0)
    test, y_test = _clusters(10, seed=1)
    if method == "lsh":
        db, q = hashing.lsh_bits(train, test, 64)
    else:
        db, q = hashing.pca_bits(train, test, 2, rotate=method == "itq")
    assert hashing.retrieval(q, y_test, db, y_train, ks=(10,))["precision@10"] == 1.0


def test_itq_rotation_is_orthogonal_and_its_loss_never_rises():
    v = np.random.default_rng(0).normal(size=(300, 6)) @ np.diag([5, 4, 3, 2, 1, 0.5])
    r, losses = hashing.itq(v, iterations=30)
    np.testing.assert_allclose(r @ r.T, np.eye(6), atol=1e-10)
    assert all(b <= a + 1e-9 for a, b in zip(losses, losses[1:], strict=False))
    assert losses[-1] < losses[0]


def _vanilla(binary_code):
    model = models.create_model(
        "vanilla", hidden=(16,), latent_dim=8, code_activation="sigmoid", binary_code=binary_code
    )
    x = jax.random.uniform(jax.random.PRNGKey(0), (4, 28, 28, 1))
    return model, model.init(jax.random.PRNGKey(1), x, train=False), x


def test_straight_through_codes_are_bits_with_the_sigmoid_gradient():
    model, variables, x = _vanilla("straight_through")
    z = model.apply(variables, x, method=type(model).encode)
    assert set(np.unique(np.asarray(z))) <= {0.0, 1.0}

    def loss(params):
        return jnp.sum(model.apply({"params": params}, x, method=type(model).encode) * 1.0)

    grads = jax.grad(loss)(variables["params"])
    assert float(jnp.abs(grads["enc_1"]["kernel"]).sum()) > 0  # rounding passes the gradient


def test_noise_codes_are_noisy_in_training_only():
    model, variables, x = _vanilla("noise")

    def enc(train, key):
        fn = type(model).encode
        return model.apply(variables, x, train=train, rngs={"dropout": key}, method=fn)

    k1, k2 = jax.random.PRNGKey(2), jax.random.PRNGKey(3)
    assert not np.allclose(enc(True, k1), enc(True, k2))
    np.testing.assert_array_equal(enc(False, k1), enc(False, k2))
    with pytest.raises(ValueError, match="needs code_activation='sigmoid'"):
        models.create_model("vanilla", binary_code="noise")
