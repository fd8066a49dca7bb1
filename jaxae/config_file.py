"""The command line's side of configs: running a config file's `get_config()`, and applying
`--config.FIELD=VALUE` overrides. Every mistake is one ConfigError line that shows the fix."""

from __future__ import annotations

import ast
import difflib
import importlib.util
import pathlib
import traceback
from typing import Any

import ml_collections

from jaxae.config import ConfigError


def _line_in(exc: BaseException, path: pathlib.Path) -> str:
    """' line N' of the innermost traceback frame inside `path` ('' if none is)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if _same(f.filename, path)]
    return f" line {frames[-1].lineno}" if frames else ""


def _same(filename: str, path: pathlib.Path) -> bool:
    try:
        return pathlib.Path(filename).resolve() == path.resolve()
    except OSError:
        return False


def _message(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def load_file(path: str | pathlib.Path) -> ml_collections.ConfigDict:
    """Runs `get_config()` of a config file such as configs/conv_deep.py.

    A missing file, a syntax error (file and line), an exception while the file runs or in
    `get_config()` (its line and message) and a result that is not a ConfigDict are each one
    ConfigError line.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        here = pathlib.Path("configs")
        names = ", ".join(sorted(p.name for p in here.glob("*.py"))) if here.is_dir() else ""
        raise ConfigError(
            f"config file {path} not found" + (f"; configs/ has {names}" if names else "")
        )
    spec = importlib.util.spec_from_file_location(f"_jaxae_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:  # in this file, or in one it imports: name the one it is in
        where = f"{e.filename or path} line {e.lineno}"
        raise ConfigError(f"config file {where}: {e.msg}; fix the syntax there") from None
    except Exception as e:
        raise ConfigError(
            f"config file {path}{_line_in(e, path)} raised {_message(e)} while loading"
        ) from None
    if not callable(getattr(module, "get_config", None)):
        raise ConfigError(f"config file {path} defines no get_config() returning a ConfigDict")
    try:
        config = module.get_config()
    except Exception as e:
        raise ConfigError(
            f"config file {path}{_line_in(e, path)}: get_config() raised {_message(e)}"
        ) from None
    if not isinstance(config, ml_collections.ConfigDict):
        raise ConfigError(
            f"get_config() in {path} returned a {type(config).__name__}, not an "
            f"ml_collections.ConfigDict; start it from jaxae.config.default_config()"
        )
    return config


def _integer_hint(text: str, value: Any) -> str | None:
    """For an int field given a float such as 1e3: the integer to write instead."""
    if isinstance(value, float) and value == value and abs(value) < float("inf"):
        return str(round(value))
    return None


def _parse_value(text: str, current: Any, path: str) -> Any:
    """Command-line text -> a value of the field's type, or a one-line ConfigError."""
    want = type(current)
    if want is str:
        return text
    if want is bool:
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise ConfigError(f"--config.{path}={text} is not a bool; write --config.{path}=True")
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = None
    if want is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if want is tuple and isinstance(value, tuple | list):
        return tuple(value)
    if isinstance(value, want) and not isinstance(value, bool):
        return value
    if want is int:
        hint = _integer_hint(text, value) or repr(current)
        raise ConfigError(
            f"--config.{path}={text} is not an integer; write it as one, e.g. "
            f"--config.{path}={hint}"
        )
    if hasattr(current, "keys"):  # a group such as codec: set its fields, not the group
        fields = ", ".join(f"--config.{path}.{k}" for k in sorted(current.keys()))
        raise ConfigError(f"--config.{path} is a group of fields; set one of them: {fields}")
    kind = {float: "number", tuple: "tuple"}.get(want, want.__name__)
    raise ConfigError(
        f"--config.{path}={text} is not a {kind} (it is {current!r} now); "
        f"e.g. --config.{path}={current!r}"
    )


def _unknown(path: str, i: int, target: Any) -> ConfigError:
    """The error for part i of `path` not found in `target`: the fields there, the closest."""
    parts = path.split(".")
    part, where = parts[i], ".".join(parts[:i])
    if not isinstance(target, ml_collections.ConfigDict):
        return ConfigError(
            f"config field {where!r} is a value, not a group: {path!r} cannot be set"
        )
    known = sorted(target)
    close = difflib.get_close_matches(part, known, n=1, cutoff=0.5)
    message = f"unknown config field {path!r}"
    if close:
        message += f" (did you mean {'.'.join([*parts[:i], close[0]])}?)"
    if where == "model":
        message += f"; model {target.get('name')!r} has the fields {', '.join(known)}"
        others = _models_with_field(part)
        if others:
            message += f" ({part} is a field of {', '.join(others)})"
        return ConfigError(message)
    group = f"the fields of {where!r}" if where else "the top-level fields"
    return ConfigError(f"{message}; {group} are {', '.join(known)}")


def _models_with_field(name: str) -> list[str]:
    from jaxae import models

    return [m for m, cls in models.MODELS.items() if name in models.model_fields(cls)]


def apply_overrides(config: ml_collections.ConfigDict, overrides: list[str]) -> None:
    """Applies `FIELD=VALUE` strings (dotted paths) in place; unknown fields are refused."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} needs a value: --config.{item}=VALUE")
        path, text = item.split("=", 1)
        *parents, leaf = path.split(".")
        target = config
        for i, part in enumerate([*parents, leaf]):
            if not isinstance(target, ml_collections.ConfigDict) or part not in target:
                raise _unknown(path, i, target)
            if i < len(parents):
                target = target[part]
        target[leaf] = _parse_value(text, target[leaf], path)


def parse_with_overrides(parser, argv: list[str]) -> tuple[Any, list[str]]:
    """(`parser`'s arguments, the `--config.FIELD=VALUE` overrides among `argv` as
    'FIELD=VALUE' strings for `apply_overrides`); any other extra argument is a usage error."""
    args, rest = parser.parse_known_args(argv)
    bad = [a for a in rest if not a.startswith("--config.")]
    if bad:
        parser.error(f"unexpected arguments {bad}; overrides look like --config.FIELD=VALUE")
    return args, [a.removeprefix("--config.") for a in rest]
