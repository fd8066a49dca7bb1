"""Config files and overrides: each mistake is one `error:` line with the fix, exit 2."""

import importlib.util

import pytest
from conftest import ROOT

from jaxae import config as config_lib


def _main(argv):
    spec = importlib.util.spec_from_file_location("train_cli", ROOT / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(argv)


def _error_line(capsys, argv):
    with pytest.raises(SystemExit) as info:
        _main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


BROKEN = {
    "syntax error": ("def get_config():\n    return 1\n\nx = 1 +\n", ["line 4", "invalid syntax"]),
    "get_config raises": (
        "from jaxae.config import default_config\n\ndef get_config():\n"
        "    c = default_config()\n    raise KeyError('latent')\n",
        ["line 5", "get_config() raised KeyError", "latent"],
    ),
    "module raises on import": ("import no_such_module_anywhere\n", ["line 1", "ModuleNotFound"]),
    "returns a dict": ("def get_config():\n    return {'seed': 0}\n", ["a dict", "ConfigDict"]),
    "no get_config": ("X = 1\n", ["defines no get_config()"]),
}


@pytest.mark.parametrize("case", BROKEN)
def test_broken_config_file_is_one_line(case, tmp_path, capsys):
    text, needles = BROKEN[case]
    path = tmp_path / "broken.py"
    path.write_text(text)
    line = _error_line(capsys, ["--config", str(path), "--workdir", str(tmp_path / "run")])
    assert str(path) in line
    for needle in needles:
        assert needle in line, line
    assert not (tmp_path / "run").exists()


OVERRIDES = {
    # the model's own fields, and which models have the one asked for
    "model.latent_dim=16": ["model 'conv_deep' has the fields", "features", "field of linear"],
    "model.featurs=8": ["did you mean model.features?"],
    "num_steps=1e3": ["not an integer", "--config.num_steps=1000"],
    "num_steps=2.6": ["not an integer", "--config.num_steps=3"],
    "dataset.nme=x": ["did you mean dataset.name?", "validation_fraction"],
    "seed.x=1": ["'seed' is a value"],
    "progress=maybe": ["not a bool", "--config.progress=True"],
    "learning_rate=fast": ["not a number", "--config.learning_rate=0.001"],
    "codec=": ["is a group of fields", "--config.codec.lmbda"],  # not the group's repr
}


@pytest.mark.parametrize("override", OVERRIDES)
def test_override_errors_show_the_fields_and_a_valid_value(override, tmp_path):
    config = config_lib.load_file(ROOT / "configs" / "conv_deep.py")
    with pytest.raises(config_lib.ConfigError) as info:
        config_lib.apply_overrides(config, [override])
    for needle in OVERRIDES[override]:
        assert needle in str(info.value), str(info.value)
    assert "\n" not in str(info.value)


def test_integer_written_as_float_literal_is_refused_not_truncated():
    config = config_lib.load_file(ROOT / "configs" / "conv_deep.py")
    config_lib.apply_overrides(config, ["num_steps=1000", "learning_rate=1e-3"])
    assert config.num_steps == 1000 and config.learning_rate == 1e-3


def test_extra_arguments_are_overrides_or_a_usage_error(capsys):
    import argparse

    from jaxae import config_file

    parser = argparse.ArgumentParser(prog="x")
    parser.add_argument("--workdir")
    args, overrides = config_file.parse_with_overrides(
        parser, ["--workdir", "w", "--config.num_steps=3", "--config.model.latent_dim=4"]
    )
    assert args.workdir == "w" and overrides == ["num_steps=3", "model.latent_dim=4"]
    with pytest.raises(SystemExit) as info:
        config_file.parse_with_overrides(parser, ["--workdir", "w", "--steps=3"])
    assert info.value.code == 2
    assert "unexpected arguments ['--steps=3']" in capsys.readouterr().err
