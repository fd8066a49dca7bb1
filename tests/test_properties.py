"""Property tests: any config override or IDX file gives a clean run or one clear error line."""

import contextlib
import gzip
import pathlib
import tempfile

import jax
import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from jaxae import config as config_lib
from jaxae import data, errors, models, objectives, optim, train

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = sorted(p.stem for p in (ROOT / "configs").glob("*.py"))
FEW = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,  # the same examples in CI every time
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _leaf_paths(config, prefix=""):
    for key in config:
        value = config[key]
        if hasattr(value, "keys"):
            yield from _leaf_paths(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def _assert_one_clear_line(error: BaseException) -> None:
    assert isinstance(error, errors.UserError), repr(error)
    message = str(error)
    assert message and "\n" not in message and "Traceback" not in message, message


JUNK = st.one_of(
    st.text(max_size=10),
    st.sampled_from(["True", "false", "()", "None", "1e999", "-0.0", "nan", "[3, -1]", "0"]),
)


def _values_like(current):
    """Override texts of the field's own type, near the edges, and now and then junk."""
    if isinstance(current, bool):
        typed = st.sampled_from(["True", "False", "1", "0", "maybe"])
    elif isinstance(current, int):
        typed = st.one_of(st.integers(-3, 64), st.integers(-(2**40), 2**40)).map(str)
    elif isinstance(current, float):
        typed = st.one_of(st.floats(-10, 10), st.floats(allow_nan=True, allow_infinity=True))
        typed = typed.map(repr)
    elif isinstance(current, tuple):
        typed = st.lists(st.integers(-2, 40), max_size=4).map(lambda xs: str(tuple(xs)))
    else:
        typed = st.text(max_size=10)
    return st.one_of(typed, typed, typed, JUNK)


@st.composite
def overrides(draw):
    name = draw(st.sampled_from(CONFIGS))
    config = config_lib.load_file(ROOT / "configs" / f"{name}.py")
    paths = sorted(_leaf_paths(config))
    model = [p for p in paths if p.startswith("model.") and p != "model.name"]
    junk = st.text("abcdefghijklmnopqrstuvwxyz_.", min_size=1, max_size=16)
    items = []
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.one_of(st.sampled_from(paths), st.sampled_from(model), junk))
        current = config
        for part in path.split("."):
            current = current.get(part) if hasattr(current, "get") else None
        items.append(f"{path}={draw(_values_like(current))}")
    return config, items


@settings(FEW, max_examples=100)  # no compilation inside: cheap
@given(overrides())
def test_any_override_validates_cleanly_or_is_one_clear_line(case):
    config, items = case
    try:
        config_lib.apply_overrides(config, items)
        config_lib.validate(config)
    except Exception as e:  # noqa: BLE001 (the property: only one-line user errors)
        _assert_one_clear_line(e)
        return
    # Valid: everything up to the first compilation must work (abstract shapes only).
    fields = dict(config.model)
    model = models.create_model(fields.pop("name"), **fields)
    tx, _ = optim.make_optimizer(config, max(config.num_steps, 1))
    objectives.make_objective(config, model)
    image_shape = tuple(fields.get("image_shape", (28, 28, 1)))
    state = jax.eval_shape(lambda: train.init_state(model, tx, image_shape, config.seed))
    assert models.count_params(state.params) > 0


DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@st.composite
def idx_bytes(draw):
    """Mostly almost-valid IDX files (wrong sizes, codes, dims, gzip damage), some pure noise."""
    if draw(st.booleans()) and draw(st.booleans()):
        return draw(st.binary(max_size=64))
    code = draw(st.sampled_from([*DTYPES, 0x00, 0x07, 0xFF]))
    dims = draw(
        st.lists(st.one_of(st.integers(0, 4), st.sampled_from([2**31, 2**32 - 1])), max_size=4)
    )
    itemsize = np.dtype(DTYPES.get(code, "u1")).itemsize
    size = int(np.prod(dims, dtype=object)) * itemsize if dims else 0
    size = max(0, min(size, 512) + draw(st.integers(-3, 3)))
    zero = draw(st.sampled_from([b"\x00\x00", b"\x00\x00", b"\x01\x00"]))
    raw = zero + bytes([code, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)
    raw += draw(st.binary(min_size=size, max_size=size))
    if draw(st.booleans()):
        raw = gzip.compress(raw)
        if draw(st.booleans()):
            raw = raw[: draw(st.integers(0, len(raw)))]
    return raw


@FEW
@given(idx_bytes())
@example(b"\x00\x00\x0b\x03\x00\x00\x00\x00\x80\x00\x00\x00\x80\x00\x00\x00")  # 0×2³¹×2³¹
def test_any_idx_file_reads_or_is_one_clear_line_naming_it(raw):
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "train-images-idx3-ubyte.gz"
        path.write_bytes(raw)
        try:
            array = data.read_idx(path)
        except ValueError as e:
            message = str(e)
            assert str(path) in message and "\n" not in message, message
            return
        assert isinstance(array, np.ndarray) and array.ndim == raw_ndim(raw)


def raw_ndim(raw: bytes) -> int:
    with contextlib.suppress(OSError, EOFError):
        raw = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    return raw[3]


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


@settings(FEW, max_examples=20)
@given(idx_bytes(), st.sampled_from(["train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"]))
def test_a_malformed_file_among_good_ones_is_one_clear_line(monkeypatch, raw, victim):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        good = {
            "train-images-idx3-ubyte": np.zeros((4, 28, 28), np.uint8),
            "train-labels-idx1-ubyte": np.arange(4, dtype=np.uint8),
            "t10k-images-idx3-ubyte": np.zeros((2, 28, 28), np.uint8),
            "t10k-labels-idx1-ubyte": np.arange(2, dtype=np.uint8),
        }
        (tmp / "idx").mkdir()
        for name, array in good.items():
            (tmp / "idx" / name).write_bytes(raw if name == victim else _idx(array))
        monkeypatch.setenv("JAXAE_DATA_DIR", str(tmp / "idx"))
        monkeypatch.setenv("JAXAE_CACHE_DIR", str(tmp / "cache"))
        monkeypatch.setenv("TFDS_DATA_DIR", str(tmp / "no-tfds"))
        monkeypatch.setenv("JAXAE_DEBIAN_DATA_ROOT", str(tmp / "no-debian"))
        try:
            ds = data.load_dataset("mnist", image_shape=(28, 28, 1))
        except Exception as e:  # noqa: BLE001 (the property: only one-line user errors)
            _assert_one_clear_line(e)
            return
        assert ds.image_shape == (28, 28, 1)
