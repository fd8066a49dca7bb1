"""Analyses of trained runs (`python -m jaxae.analyze`), `jaxae.load` and the bottleneck sweep.

Nothing is imported here, so `jaxae.analysis.load` stays free of matplotlib and scikit-learn.
"""
