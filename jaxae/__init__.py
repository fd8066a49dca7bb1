"""jaxae: the autoencoder family in JAX/Flax."""


def __getattr__(name: str):
    # `jaxae.load` is imported lazily so `import jaxae.config` (train.py's flag checks) stays
    # free of jax; the module is `loading`, not `load`, so importing it never shadows the function.
    if name == "load":
        from jaxae.loading import load

        return load
    raise AttributeError(f"module 'jaxae' has no attribute {name!r}")
