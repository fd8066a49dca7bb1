"""Model selection without the test set: a seeded validation split held out from train, the
best step by validation loss, and early stopping after `patience` evaluations without progress."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np

from jaxae.errors import UserError
from jaxae.rng import run_key


class ValidationSplitError(UserError, ValueError):
    """The validation fraction leaves no validation example, or too few to train on."""


def split_indices(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices into n examples: round(fraction * n) held out at random.

    A pure function of (n, fraction, seed) through the run's 'validation' key: the same seed
    always holds out the same examples. Both index arrays are sorted and disjoint.
    """
    size = round(fraction * n)
    if fraction > 0 and size == 0:
        raise ValidationSplitError(
            f"validation_fraction {fraction} of {n} training examples holds out none; raise "
            f"--config.dataset.validation_fraction to at least {1 / n:.3g}"
        )
    perm = np.asarray(jax.random.permutation(run_key(seed, "validation"), n))
    return np.sort(perm[size:]), np.sort(perm[:size])


def hold_out(ds: Any, fraction: float, seed: int) -> tuple[Any, np.ndarray | None]:
    """(ds with the validation examples removed from train, validation images or None).

    `ds` is a jaxae.data.Dataset; with fraction 0 it comes back unchanged, with None. The
    scaling of a table stays the one its source fitted on the whole training split.
    """
    if not fraction:
        return ds, None
    train, validation = split_indices(len(ds.train_images), fraction, seed)
    rest = dataclasses.replace(
        ds, train_images=_take(ds.train_images, train), train_labels=ds.train_labels[train]
    )
    return rest, _take(ds.train_images, validation)


def _take(images: Any, index: np.ndarray) -> Any:
    """images[index], except that a streamed source stays a view that reads rows on demand."""
    from jaxae.data import stream

    if isinstance(images, stream.Rows):
        return stream.Rows(
            images.base,
            images.index[index],
            shape=images.shape[1:],
            dtype=images.dtype,
            transform=images.transform,
        )
    return images[index]


@dataclasses.dataclass
class Selection:
    """The best evaluation so far (by validation loss) and how many came after it.

    Stored in every checkpoint's metadata (`to_meta`), so a resumed run continues the count
    exactly where the interrupted one was.
    """

    patience: int = 0  # evaluations without improvement before stopping; 0 = never stop
    best_step: int | None = None
    best_loss: float | None = None
    best_metrics: dict[str, float] | None = None
    since_best: int = 0
    stopped_at: int | None = None

    def update(self, step: int, metrics: dict[str, float]) -> bool:
        """Records one validation evaluation; True when it is the best so far."""
        loss = float(metrics["loss"])
        if self.best_loss is None or loss < self.best_loss:
            self.best_step, self.best_loss, self.best_metrics = step, loss, dict(metrics)
            self.since_best = 0
            return True
        self.since_best += 1
        if self.patience and self.since_best >= self.patience:
            self.stopped_at = step
        return False

    @property
    def should_stop(self) -> bool:
        return self.stopped_at is not None

    def to_meta(self) -> dict:
        return {"selection": dataclasses.asdict(self)}

    @classmethod
    def from_meta(cls, meta: dict | None, patience: int) -> Selection:
        """The selection saved in a checkpoint's metadata (a fresh one if there is none); the
        patience is this run's, so a run resumed with a larger one trains on."""
        saved = dict((meta or {}).get("selection") or {})
        saved["patience"] = patience
        selection = cls(**saved)
        if selection.stopped_at is not None and not (patience and selection.since_best >= patience):
            selection.stopped_at = None
        return selection
