"""jaxae: the autoencoder family in JAX/Flax."""

__all__ = ["contractive_penalty", "load"]


def __getattr__(name: str):
    # Public functions are imported lazily so `import jaxae.config` (train.py's flag checks) stays
    # free of jax; `load` lives in jaxae/analysis/load.py, a submodule of jaxae.analysis, so
    # importing it never shadows the function `jaxae.load`.
    if name == "load":
        from jaxae.analysis.load import load

        return load
    if name == "contractive_penalty":
        from jaxae.contractive import contractive_penalty

        return contractive_penalty
    raise AttributeError(f"module 'jaxae' has no attribute {name!r}")
