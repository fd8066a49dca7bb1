"""Named random streams: every use of randomness folds its own name into the run's key."""

from __future__ import annotations

import jax

# Fixed numbers, never reused: a stream's key is fold_in(parent, number), so adding a stream
# never changes the keys of the others, and a resumed run draws exactly the same keys.
# Run-level streams fold into PRNGKey(seed); step-level ones into the step's key.
STREAMS = {
    # run level
    "init": 0,  # parameter initialisation
    "train": 1,  # parent of every step's key: fold_in(train, step)
    "eval": 2,  # evaluation (VAE samples for the ELBO)
    "data": 3,  # data order: epoch e is permutation(fold_in(data, e))
    "nll": 4,  # importance samples of the test NLL
    "pretrain": 5,  # greedy layer-wise pretraining
    "validation": 6,  # which training examples are held out for validation
    "adversary": 7,  # the critic's initialisation and its key in the train state
    # step level
    "dropout": 11,
    "sample": 12,  # VAE reparameterisation
    "noise": 13,  # denoising corruption
    "probe": 14,  # Hutchinson probes
    "binarize": 15,  # dynamic binarization
}


def stream(key: jax.Array, name: str) -> jax.Array:
    """The key of stream `name` under `key` (a run's PRNGKey(seed), or a step's key)."""
    return jax.random.fold_in(key, STREAMS[name])


def run_key(seed: int, name: str) -> jax.Array:
    """stream(PRNGKey(seed), name): the run-level key of `name`."""
    return stream(jax.random.PRNGKey(seed), name)
