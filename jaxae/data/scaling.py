"""Per-feature scaling of vectors, fitted on the training split only and stored with the run.

The models' decoders end in a sigmoid, so features are mapped into [0, 1] by the training
split's per-feature minimum and range ('minmax'); test rows may fall outside [0, 1], which is
what makes an unusual row score high as an anomaly. 'none' takes features that already lie in
[0, 1]. The fitted Scaling goes to workdir/scaling.json; jaxae.load and the analysis apply it.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any

import numpy as np

from jaxae.data.core import DataFileError

SCALINGS = ("minmax", "none")
FILE_NAME = "scaling.json"  # in the workdir, written by training for vector datasets
_CHUNK = 65536  # rows per pass when fitting a streamed array


@dataclasses.dataclass(frozen=True, eq=False)
class Scaling:
    """x_scaled = (x - offset) / scale, per feature: offset, scale [D] float64."""

    kind: str
    offset: np.ndarray
    scale: np.ndarray
    feature_names: tuple[str, ...] = ()

    def apply(self, x: Any) -> np.ndarray:
        """Raw features [..., D] -> float32 [..., D] on the scale the model was trained on."""
        x = np.asarray(x, np.float64)
        return ((x - self.offset) / self.scale).astype(np.float32)

    def invert(self, x: Any) -> np.ndarray:
        """Scaled features [..., D] (e.g. reconstructions) -> the original units, float64."""
        return np.asarray(x, np.float64) * self.scale + self.offset

    def to_json(self) -> dict:
        return {
            "kind": self.kind,
            "offset": self.offset.tolist(),
            "scale": self.scale.tolist(),
            "feature_names": list(self.feature_names),
        }

    @classmethod
    def from_json(cls, d: dict) -> Scaling:
        return cls(
            d["kind"],
            np.asarray(d["offset"], np.float64),
            np.asarray(d["scale"], np.float64),
            tuple(d.get("feature_names", ())),
        )


def fit(kind: str, train: Any, feature_names: tuple[str, ...] = (), where: str = "") -> Scaling:
    """The Scaling of `kind` fitted on train [N, D] (read in chunks, so a memmap works).

    'none' checks that the features already lie in [0, 1] (DataFileError naming `where` if not).
    """
    n, d = train.shape
    lo, hi = np.full(d, np.inf), np.full(d, -np.inf)
    for start in range(0, n, _CHUNK):
        block = np.asarray(train[start : start + _CHUNK], np.float64)
        lo, hi = np.minimum(lo, block.min(axis=0)), np.maximum(hi, block.max(axis=0))
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        bad = int(np.flatnonzero(~(np.isfinite(lo) & np.isfinite(hi)))[0])
        name = feature_names[bad] if feature_names else f"column {bad}"
        raise DataFileError(
            f"{where}: feature {name} holds NaN/inf values; fill or drop those rows"
        )
    if kind == "none":
        if n and (lo.min() < 0 or hi.max() > 1):
            raise DataFileError(
                f"{where}: features span [{lo.min():g}, {hi.max():g}] but scaling='none' needs "
                f"[0, 1] (the decoder ends in a sigmoid); use --config.dataset.scaling=minmax"
            )
        return Scaling("none", np.zeros(d), np.ones(d), feature_names)
    if kind != "minmax":
        raise ValueError(f"scaling must be one of {SCALINGS}, got {kind!r}")
    scale = hi - lo
    scale[~(scale > 0)] = 1.0  # a constant feature maps to 0, not to NaN
    return Scaling("minmax", lo, scale, feature_names)


def save(scaling: Scaling | None, workdir: str | pathlib.Path) -> None:
    """Writes workdir/scaling.json for a vector dataset (nothing for images)."""
    if scaling is not None:
        path = pathlib.Path(workdir) / FILE_NAME
        path.write_text(json.dumps(scaling.to_json(), indent=1) + "\n")


def load(workdir: str | pathlib.Path) -> Scaling | None:
    """The Scaling a run stored in workdir/scaling.json, or None (image runs store none)."""
    path = pathlib.Path(workdir) / FILE_NAME
    return Scaling.from_json(json.loads(path.read_text())) if path.is_file() else None
