"""`python -m jaxae.analyze --workdir DIR`: figures, analysis.json and report.html of a run.

The analyses live in the package jaxae/analysis/ (its command line: jaxae/analysis/cli.py).
"""

import sys

from jaxae.analysis.cli import main

if __name__ == "__main__":
    main(sys.argv[1:])
