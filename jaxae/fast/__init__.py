"""Forms of the models' operations that XLA:CPU runs faster; opt-in through `fast_ops`."""
