"""Compiled programs kept across runs under a key that needs no tracing.

JAX's persistent compilation cache keys a program on its lowered module, so a second run of
a config still traces and lowers every program before it can look one up: about 2 s of a
fully connected model's start on a 2-core CPU. A `ProgramStore` instead keys each program on
what determines it before tracing: the run's `fingerprint` (the config, the data's shapes,
jaxae's own source, the JAX and jaxlib versions, the devices, the XLA flags, JAX's config),
the program's name, its static arguments and the shapes, dtypes and shardings of its array
arguments. It keeps the executable (`jax.experimental.serialize_executable`) in
cache_root()/programs and loads it in the next run instead of tracing, lowering and
compiling. A stored program that cannot be loaded is compiled again, with one line on stderr
that says why. Past $JAXAE_PROGRAMS_MAX_BYTES (default 2 GiB) storing a program removes the
least recently used ones. train.py turns the store on with JAX's cache (`enable()`); a process
that has not called `enable()`, such as a notebook calling train_and_evaluate, traces as usual.

That key is sound only while a program's values come from its arguments, the config and
jaxae's code (models defined elsewhere are not stored): a step must not close over data
values (tests/runtime/test_programs.py lowers the steps of two datasets of the same shapes and
compares them). Files a step reads from elsewhere, such as the classifier of a
feature-matching loss, go into the fingerprint by content.

Any change to jaxae's source changes every key, so the first run after one compiles its steps
again even where JAX's cache still has them (an executable loaded from that cache cannot be
stored; see `fresh_compile`). Like JAX's cache this trusts the cache directory: loading an
executable runs its code.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import pathlib
import pickle
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

import jax

from jaxae import config as config_lib
from jaxae.errors import UserError

LOADED = "/jaxae/programs/loaded"  # jax.monitoring events that startup.Timeline counts
LOAD_SECONDS = "/jaxae/programs/load_seconds"
_ENV_FLAGS = ("XLA_FLAGS", "LIBTPU_INIT_ARGS", "TPU_LIBRARY_PATH", "NEURON_CC_FLAGS")
_directory: pathlib.Path | None = None  # set by enable(): where this process keeps programs
# the store's size past which storing a program removes the least recently used ones
MAX_BYTES = 2 << 30


class StoreSizeError(UserError, ValueError):
    """$JAXAE_PROGRAMS_MAX_BYTES is not a number of bytes."""


def enable(directory: str | pathlib.Path) -> None:
    """Keeps this process's training programs in `directory` (train.py: cache_root()/programs).
    Checks $JAXAE_PROGRAMS_MAX_BYTES first (StoreSizeError, one line)."""
    global _directory
    max_bytes()
    _directory = pathlib.Path(directory)


def max_bytes() -> int:
    """The store's size bound: $JAXAE_PROGRAMS_MAX_BYTES, else MAX_BYTES."""
    raw = os.environ.get("JAXAE_PROGRAMS_MAX_BYTES", "")
    if not raw:
        return MAX_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise StoreSizeError(
            f"JAXAE_PROGRAMS_MAX_BYTES={raw!r} is not a whole number of bytes; set it to one, "
            f"e.g. JAXAE_PROGRAMS_MAX_BYTES={MAX_BYTES}, or unset it"
        )
    return value


def store(**run: Any) -> ProgramStore:
    """The store for a run fingerprinted by `run` (see `fingerprint`); OFF unless `enable()`d."""
    return OFF if _directory is None else ProgramStore(_directory, fingerprint(**run))


@functools.cache
def source_digest() -> str:
    """sha256 of every .py file of the installed jaxae package, by relative path."""
    root = pathlib.Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def environment() -> dict[str, Any]:
    """What a compiled program depends on besides the run: versions, devices, flags."""
    import jaxlib

    backend = jax.devices()[0].client
    return {
        "python": sys.version,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "platform": [backend.platform, backend.platform_version],
        "devices": [[d.id, d.device_kind, d.process_index] for d in jax.devices()],
        "process": [jax.process_index(), jax.process_count()],
        "env": {name: os.environ.get(name) for name in _ENV_FLAGS},
        "jax_config": {k: repr(v) for k, v in sorted(jax.config.values.items())},
        "jaxae": source_digest(),
    }


def files_digest(paths: Iterable[pathlib.Path]) -> str:
    """sha256 of the contents of every file under `paths` (files or directories)."""
    digest = hashlib.sha256()
    for top in map(pathlib.Path, paths):
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
        for path in files:
            digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def fingerprint(**parts: Any) -> str:
    """sha256 of `parts` (JSON-able: the config, data shapes, ...) and the `environment()`."""
    text = json.dumps({"run": parts, "environment": environment()}, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def _leaf_signature(leaf: Any) -> tuple:
    if isinstance(leaf, jax.Array):
        return (leaf.shape, leaf.dtype, leaf.weak_type, leaf.sharding)
    return (type(leaf), getattr(leaf, "shape", None), getattr(leaf, "dtype", None))


class ProgramStore:
    """`wrap(name, jitted)` gives a function that runs `jitted`'s program, loaded from
    `directory` when a run with the same `run_fingerprint` stored it, else compiled and stored.

    With `directory` None the store is off and `wrap` returns `jitted` itself.
    """

    def __init__(self, directory: str | pathlib.Path | None, run_fingerprint: str = ""):
        self.directory = None if directory is None else pathlib.Path(directory)
        self.run_fingerprint = run_fingerprint
        # per program name, the most bytes of temporaries XLA reports for one of its executables
        self.temp_bytes: dict[str, int] = {}

    def wrap(self, name: str, jitted: Any, static_argnums: tuple[int, ...] = ()) -> Callable:
        """`jitted` (a jax.jit function, called with positional arguments only) through the
        store. Static arguments must have a stable repr (ints, strings, tuples of them)."""
        if self.directory is None:
            return jitted
        programs: dict[tuple, Any] = {}

        def call(*args):
            static = tuple(args[i] for i in static_argnums)
            dynamic = [a for i, a in enumerate(args) if i not in static_argnums]
            leaves, treedef = jax.tree.flatten(dynamic)
            signature = (static, treedef, tuple(_leaf_signature(x) for x in leaves))
            program = programs.get(signature)
            if program is None:
                program = programs[signature] = self._load_or_compile(name, jitted, args, signature)
            return program(*dynamic)

        return call

    def fact(self, name: str, compute: Callable[[], Any]) -> Any:
        """compute() (a JSON value) kept beside the programs under this run's fingerprint, so
        that a fact about them that costs tracing (the scan choice) is read, not traced, by the
        next run of the same config. With the store off, compute()."""
        if self.directory is None:
            return compute()
        digest = hashlib.sha256(repr((self.run_fingerprint, name)).encode()).hexdigest()[:32]
        path = self.directory / f"{name}-{digest}.json"
        try:
            return json.loads(path.read_text())["value"]
        except (OSError, ValueError, KeyError):  # not yet kept, or a partial file
            pass
        value = compute()
        try:
            _write_whole(path, json.dumps({"value": value}).encode())
        except OSError as exc:
            _note(f"{name} is not kept ({_why(exc)}); the next run works it out again")
        return value

    def step_temp_bytes(self) -> int | None:
        """The train step's bytes of temporaries (a scan epoch's, when the steps run in one),
        once it has run through this store; else None."""
        found = [self.temp_bytes[n] for n in ("train_step", "scan_epoch") if n in self.temp_bytes]
        return max(found) if found else None

    def path(self, name: str, signature: tuple) -> pathlib.Path:
        static, treedef, leaves = signature
        text = repr((self.run_fingerprint, name, static, str(treedef), leaves))
        return self.directory / f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:32]}.bin"

    def _load_or_compile(self, name: str, jitted: Any, args: tuple, signature: tuple):
        program = self._stored(name, jitted, args, signature)
        temp = _temp_bytes(program)
        if temp is not None:
            self.temp_bytes[name] = max(temp, self.temp_bytes.get(name, 0))
        return program

    def _stored(self, name: str, jitted: Any, args: tuple, signature: tuple):
        path = self.path(name, signature)
        if stored_programs_run(self.directory) and path.exists():
            try:
                return _load(path)
            except Exception as exc:  # a truncated file: compile and replace it
                _note(f"stored program {path} did not load ({_why(exc)}); compiling it again")
        compiled, storable = fresh_compile(jitted.lower(*args))
        if storable:
            _store(path, compiled)
        else:
            _note(f"program {path.stem} is not stored (this XLA cannot compile it afresh)")
        return compiled


def _temp_bytes(compiled: Any) -> int | None:
    """The bytes of temporaries one execution of `compiled` allocates, where XLA says."""
    try:
        return int(compiled.memory_analysis().temp_size_in_bytes)
    except Exception:  # a backend without memory analysis
        return None


def fresh_compile(lowered: Any) -> tuple[Any, bool]:
    """(`lowered.compile()`, whether it can be stored): compiled by XLA rather than loaded from
    JAX's persistent cache.

    An executable that JAX's cache loaded serializes without its kernels on XLA:CPU (jaxlib
    0.10 to 0.12: the next process fails with "Function ... not found"), so after a cache hit
    the program is compiled again under an option that only changes the cache key
    (xla_embed_ir_in_executable at its default), and that copy is not written to the cache.
    An XLA that refuses the option keeps the loaded program for this run, not to be stored.
    """
    before = _cache_hits[0]
    compiled = lowered.compile()
    if _cache_hits[0] == before:
        return compiled, True
    flag = "jax_persistent_cache_min_compile_time_secs"
    threshold = getattr(jax.config, flag)
    jax.config.update(flag, float("inf"))
    try:
        return lowered.compile({"xla_embed_ir_in_executable": False}), True
    except Exception:  # e.g. "No such compile option" in another XLA
        return compiled, False
    finally:
        jax.config.update(flag, threshold)


def _count_cache_hits(event: str, **_: Any) -> None:
    if event == "/jax/compilation_cache/cache_hits":
        _cache_hits[0] += 1


_cache_hits = [0]
jax.monitoring.register_event_listener(_count_cache_hits)


def serialize(compiled: Any) -> bytes:
    """`compiled` (a jax.stages.Compiled) as bytes for `_load`: jax.experimental.
    serialize_executable's format, with each executable's own `serialize()` (what JAX's
    persistent cache stores) where it asks the client, whose bytes lack the kernels on CPU.
    It uses private parts of serialize_executable and of Compiled, as serialize_executable
    itself does; a JAX that moves them fails here, and `_store` notes it and stores nothing."""
    import io

    from jax._src.lib import xla_client
    from jax.experimental import serialize_executable

    class Pickler(serialize_executable._JaxPjrtPickler):
        def persistent_id(self, obj):
            if isinstance(obj, xla_client.LoadedExecutable) and hasattr(obj, "serialize"):
                return ("exec", obj.serialize())
            return super().persistent_id(obj)

    if compiled._params.const_args:
        raise ValueError("closed-over constant arrays cannot be serialized")
    unloaded = compiled._executable._unloaded_executable
    info, in_tree = jax.tree.flatten(compiled.args_info)
    devices = [device.id for device in unloaded.device_list]  # the program's, in its order
    with io.BytesIO() as file:
        Pickler(file).dump((unloaded, info, compiled._no_kwargs))
        return pickle.dumps((file.getvalue(), in_tree, compiled.out_tree, devices))


def _load(path: pathlib.Path, count: bool = True) -> Any:
    from jax.experimental import serialize_executable

    start = time.perf_counter()
    payload, in_tree, out_tree, ids = pickle.loads(path.read_bytes())
    by_id = {device.id: device for device in jax.devices()}
    program = serialize_executable.deserialize_and_load(
        payload, in_tree, out_tree, execution_devices=[by_id[i] for i in ids]
    )
    os.utime(path)  # used now: evicted last
    if count:  # for startup.Timeline
        jax.monitoring.record_event(LOADED)
        jax.monitoring.record_event_duration_secs(LOAD_SECONDS, time.perf_counter() - start)
    return program


def _write_whole(path: pathlib.Path, data: bytes) -> None:
    """Writes `data` to `path` so that readers see a whole file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _store(path: pathlib.Path, compiled: Any) -> None:
    try:
        _write_whole(path, serialize(compiled))
        evict(path.parent, keep=path)
    except Exception as exc:  # a program JAX cannot serialize, a read-only cache directory
        _note(f"program {path.stem} is not stored ({_why(exc)}); the next run compiles it again")


def evict(directory: pathlib.Path, keep: pathlib.Path, limit: int | None = None) -> None:
    """Removes the least recently used programs of `directory` (by modification time, which
    loading renews) until it holds at most `limit` bytes ($JAXAE_PROGRAMS_MAX_BYTES, default
    MAX_BYTES); `keep` and the check programs stay."""
    limit = max_bytes() if limit is None else limit
    files = []
    for path in directory.glob("*.bin"):
        try:
            stat = path.stat()
        except FileNotFoundError:  # removed by another process meanwhile
            continue
        files.append((stat.st_mtime, stat.st_size, path))
    total = sum(size for _, size, _ in files)
    for _, size, path in sorted(files):
        if total <= limit:
            break
        if path != keep and not path.name.startswith("check-"):
            path.unlink(missing_ok=True)
            total -= size


def stored_programs_run(directory: pathlib.Path) -> bool:
    """Whether executables an earlier process stored run in this one, checked once per
    process on a tiny stored program, so that a JAX whose executables do not survive
    serialization compiles as usual instead of failing in the first step. The first process
    of an environment stores that program and loads nothing."""
    if directory in _checked:
        return _checked[directory]
    import jax.numpy as jnp
    import numpy as np

    x = np.arange(16, dtype=np.float32).reshape(4, 4) / 16
    path = directory / f"check-{fingerprint()[:32]}.bin"
    ok = False
    if path.exists():
        try:
            ok = np.allclose(_load(path, count=False)(x), np.sin(x) @ x.T, rtol=1e-5, atol=1e-6)
        except Exception as exc:
            _note(f"stored programs do not run with this JAX ({_why(exc)}); compiling instead")
    else:
        check, storable = fresh_compile(jax.jit(lambda a: jnp.sin(a) @ a.T).lower(x))
        if storable:
            _store(path, check)
    _checked[directory] = bool(ok)
    return _checked[directory]


_checked: dict[pathlib.Path, bool] = {}


def for_run(settings: dict, model: Any, ds: Any, held: Any) -> ProgramStore:
    """The ProgramStore of a run with config `settings` (the config as JSON-able dicts) training
    `model` on `ds` (a jaxae Dataset) with `held` validation images [V, H, W, C] (or None). Off
    with several processes (each host would keep its own copy of programs all of them must run
    alike) and for models defined outside jaxae, whose source the key does not cover."""
    if jax.process_count() > 1 or not type(model).__module__.startswith("jaxae."):
        return OFF
    arrays = (ds.train_images, held, ds.test_images)
    shapes = [None if a is None else [list(a.shape), str(a.dtype)] for a in arrays]
    files, feature = "", settings["perceptual"]["feature_workdir"]
    if feature:  # its classifier's weights are constants of the step
        from jaxae import classifier

        top = pathlib.Path(feature)
        read = [top / name for name in (classifier.INFO_FILE, classifier.PARAMS_DIR)]
        files = files_digest(path for path in read if path.exists())
    return store(config=config_lib.program_fields(settings), data=shapes, files=files)


def _note(text: str) -> None:
    print(f"note: {text}", file=sys.stderr, flush=True)


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200]


OFF = ProgramStore(None)
