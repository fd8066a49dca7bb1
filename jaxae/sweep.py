"""`python -m jaxae.sweep`: one run per code size, test MSE against code size beside PCA, elbow.

The sweep lives in jaxae/analysis/sweep.py; this entry point hands it the training loop (which
applies the process settings of jaxae/fast/process.py itself).
"""

import sys

from jaxae.analysis import sweep
from jaxae.train import train_and_evaluate


def main(argv: list[str]) -> None:
    sweep.main(argv, train_and_evaluate)


if __name__ == "__main__":
    main(sys.argv[1:])
