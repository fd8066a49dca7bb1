"""`csv:PATH`, a CSV table with a header row; `parquet:PATH`; `sklearn:NAME`, a table scikit-learn
bundles.

Every column is a numeric feature except dataset.label_column (integers, or strings that
become classes in sorted order) and dataset.anomaly_column (0/1 or true/false: those rows are
never trained on and are scored as anomalies). Features become vectors [N, 1, 1, D], scaled per
feature by dataset.scaling (fitted on train only). dataset.test_path names a second CSV with the
same columns as the test split; else the rows are split as jaxae.data.own describes. A
non-numeric or empty cell is a one-line error naming the column and the line.

sklearn:NAME is sklearn.datasets.load_NAME() (offline) as the same table: its feature columns
and `target`, the label column unless dataset.label_column names another; breast_cancer's target
is recoded 1 = malignant, 0 = benign, so it also serves as dataset.anomaly_column.
`python -m jaxae.data.sklearn_csv breast_cancer out.csv` writes such a table as a CSV file.
"""

from __future__ import annotations

import csv
import dataclasses
import pathlib

import numpy as np

from jaxae.data import own
from jaxae.data.core import DataFileError, Dataset, DatasetNotFoundError, LoadRequest

_TRUE, _FALSE = ("1", "true", "yes", "1.0"), ("0", "false", "no", "0.0")


def load_csv(request: LoadRequest) -> Dataset:
    """The Dataset of the CSV file request.path (and request.test_path)."""
    return _load(request, "csv", _read_csv)


def load_parquet(request: LoadRequest) -> Dataset:
    """The Dataset of the Parquet file request.path (and request.test_path), read by pyarrow
    (which tensorflow-datasets already installs); its columns are treated as a CSV's."""
    return _load(request, "parquet", _read_parquet)


def _load(request: LoadRequest, kind: str, read) -> Dataset:
    """One table source: `read(path) -> (header, rows)` on the main and the optional test file."""
    header, main = read(request.path)
    test = None
    if request.test_path:
        test_header, test = read(request.test_path)
        if test_header != header:
            raise DataFileError(
                f"{request.test_path} has columns {test_header} but {request.path} has "
                f"{header}; give both files the same columns"
            )
    source = f"{kind}:{request.path}" + (f" + {request.test_path}" if request.test_path else "")
    return _finish(request, header, main, test, source)


def _read_parquet(path_text: str) -> tuple[list[str], np.ndarray]:
    """(column names, cells [N, columns] as str, nulls as '') of a Parquet file."""
    path = pathlib.Path(path_text).expanduser()
    if not path.is_file():
        raise DatasetNotFoundError(f"parquet:{path_text}: no such file; give a .parquet file")
    import pyarrow.parquet as pq  # lazy: only this source needs it

    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises its own ArrowInvalid, OSError...
        raise DataFileError(f"{path}: not a readable Parquet file ({e})") from None
    columns = []
    for column in table.columns:  # numpy's str() of a float round-trips exactly
        values = np.asarray(column.to_pylist(), dtype=object)
        columns.append(np.where(values == None, "", values).astype(str))  # noqa: E711
    return list(table.column_names), np.stack(columns, axis=1)


def load_sklearn(request: LoadRequest) -> Dataset:
    """The Dataset of scikit-learn's bundled table request.path (e.g. breast_cancer)."""
    header, rows = sklearn_table(request.path)
    if not request.label_column:  # the target is never a feature
        request = dataclasses.replace(request, label_column="target")
    return _finish(request, header, rows, None, f"sklearn:{request.path}")


def sklearn_table(name: str) -> tuple[list[str], np.ndarray]:
    """(column names, cells [N, columns] as str) of sklearn.datasets.load_<name>()."""
    from sklearn import datasets  # lazy: heavy, and only this source needs it

    loader = getattr(datasets, f"load_{name}", None)
    if loader is None or name in ("files", "svmlight_file", "svmlight_files", "sample_image"):
        raise DatasetNotFoundError(
            f"sklearn:{name} is not a table scikit-learn bundles; try sklearn:breast_cancer, "
            f"sklearn:wine, sklearn:iris, sklearn:diabetes or sklearn:digits"
        )
    bunch = loader()
    x, target = np.asarray(bunch.data, np.float64), np.asarray(bunch.target)
    names = [str(n) for n in getattr(bunch, "feature_names", [f"x{i}" for i in range(x.shape[1])])]
    if name == "breast_cancer":  # scikit-learn codes malignant as 0; anomalies are 1 here
        target = (target == 0).astype(int)
    columns, cells = [*names, "target"], [x, target[:, None]]
    return columns, np.concatenate([np.asarray(c).astype(str) for c in cells], axis=1)


def _read_csv(path_text: str) -> tuple[list[str], np.ndarray]:
    """(header, cells [N, columns] as str) of a CSV file; ragged rows: one-line error."""
    path = pathlib.Path(path_text).expanduser()
    if not path.is_file():
        raise DatasetNotFoundError(f"csv:{path_text}: no such file; give a CSV file with a header")
    try:
        with path.open(newline="") as f:
            rows = [r for r in csv.reader(f) if any(cell.strip() for cell in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataFileError(f"{path}: not a readable CSV file ({e})") from None
    if len(rows) < 2:
        raise DataFileError(f"{path}: needs a header row and at least one data row")
    header = [h.strip() for h in rows[0]]
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise DataFileError(
                f"{path} line {line} has {len(row)} cells but the header has {len(header)}; "
                f"fix that row"
            )
    return header, np.asarray(rows[1:], dtype=str)


def _finish(request, header, cells, test_cells, source) -> Dataset:
    """Splits columns into features / label / anomaly for the main and test cells."""
    where = request.test_path or request.path
    for field in ("label_column", "anomaly_column"):
        column = getattr(request, field)
        if column and column not in header:
            raise DataFileError(
                f"dataset.{field}={column!r} is not a column of {request.path}; its columns: "
                f"{', '.join(header)}"
            )
    special = {request.label_column, request.anomaly_column} - {""}
    features = tuple(h for h in header if h not in special)
    if not features:
        raise DataFileError(f"{request.path} has no feature columns left besides {sorted(special)}")
    classes = ()
    if request.label_column:
        joined = cells if test_cells is None else np.concatenate([cells, test_cells])
        classes = _classes(joined[:, header.index(request.label_column)])
    main = _part(header, cells, features, request, classes, request.path)
    test = (
        None if test_cells is None else _part(header, test_cells, features, request, classes, where)
    )
    return own.finish(
        request, main, test, kind="vectors", source=source, feature_names=features,
        class_names=classes,
    )  # fmt: skip


def _part(header, cells, features, request, classes, where) -> own.Part:
    x = np.stack([_numbers(cells[:, header.index(c)], c, where) for c in features], axis=1)
    labels = anomaly = None
    if request.label_column:
        column = cells[:, header.index(request.label_column)]
        labels = np.asarray([classes.index(v.strip()) for v in column], np.int32)
    if request.anomaly_column:
        anomaly = _flags(cells[:, header.index(request.anomaly_column)], request, where)
    return own.Part(x, labels, anomaly, str(where))


def _numbers(column: np.ndarray, name: str, where: str) -> np.ndarray:
    """A column of cells -> float64 [N]; a non-numeric, empty or NaN cell: one-line error."""
    try:
        values = column.astype(np.float64)
    except ValueError:
        line, cell = next((i, c) for i, c in enumerate(column) if not _is_number(c))
        at = _at(where, line)
        if not str(cell).strip():
            raise DataFileError(
                f"{where}: column {name!r} has an empty cell ({at}); fill it or drop that row"
            ) from None
        raise DataFileError(
            f"{where}: column {name!r} is not numeric ({at}: {str(cell)!r}); drop the column, "
            f"encode it as numbers, or name it in --config.dataset.label_column"
        ) from None
    bad = ~np.isfinite(values)
    if bad.any():
        line = int(np.flatnonzero(bad)[0])
        raise DataFileError(
            f"{where}: column {name!r} has {int(bad.sum())} NaN/inf cells (first on "
            f"{_at(where, line)}: {str(column[line])!r}); fill them or drop those rows"
        )
    return values


def _at(where: str, i: int) -> str:
    """Where data row i is: its line in a CSV file (the header is line 1), or its row number."""
    return f"row {i}" if str(where).lower().endswith(".parquet") else f"line {i + 2}"


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _classes(column: np.ndarray) -> tuple[str, ...]:
    """Label values in order: integers numerically (0..K-1 if they are), strings sorted."""
    values = sorted({v.strip() for v in column})
    if all(v.lstrip("-").isdigit() for v in values):
        ints = sorted(int(v) for v in values)
        if ints[0] >= 0:  # labels 0..max keep their numbers: class i is the value i
            return tuple(str(i) for i in range(ints[-1] + 1))
        return tuple(str(i) for i in ints)
    return tuple(values)


def _flags(column: np.ndarray, request: LoadRequest, where: str) -> np.ndarray:
    """An anomaly column -> bool [N]; values other than 0/1/true/false: one-line error."""
    low = np.char.lower(np.char.strip(column))
    ok = np.isin(low, _TRUE + _FALSE)
    if not ok.all():
        line = int(np.flatnonzero(~ok)[0])
        raise DataFileError(
            f"{where}: anomaly column {request.anomaly_column!r} must hold 0/1 or true/false "
            f"({_at(where, line)}: {str(column[line])!r}); recode it"
        )
    return np.isin(low, _TRUE)
