"""`python -m jaxae.data.sklearn_csv NAME OUT.csv`: a table scikit-learn bundles (offline) as
the CSV file `csv:OUT.csv` reads, e.g. breast_cancer (target 1 = malignant)."""

from __future__ import annotations

import csv
import sys

from jaxae.data import table


def main(argv: list[str]) -> None:
    """`python -m jaxae.data.sklearn_csv NAME OUT.csv`: writes scikit-learn's table NAME as CSV."""
    if len(argv) != 2:
        sys.exit("usage: python -m jaxae.data.sklearn_csv NAME OUT.csv   (e.g. breast_cancer)")
    from jaxae import errors

    with errors.one_line_errors():
        header, cells = table.sklearn_table(argv[0])
    with open(argv[1], "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(cells.tolist())
    print(f"wrote {len(cells)} rows × {len(header)} columns to {argv[1]}")


if __name__ == "__main__":
    main(sys.argv[1:])
