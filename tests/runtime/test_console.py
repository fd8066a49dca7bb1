"""What a run prints: the console's lines, and Orbax's false alarms filtered, real ones kept."""

import logging

from jaxae.runtime import console, logs


def test_durations_and_terms_read_plainly():
    assert [console.duration(s) for s in (4.4, 185, 7620)] == ["4s", "3m05s", "2h07m"]
    metrics = {"mse": 0.01234, "grad_norm": 3.0, "loss": 0.5, "learning_rate": 1e-3, "kl": 2.0}
    assert console.terms(metrics) == "loss 0.5 mse 0.01234 kl 2"  # loss first, no diagnostics
    assert console.terms(None) == "-"


def test_eval_line_and_final_summary_without_a_terminal(capsys, tmp_path):
    out = console.Console(total_steps=100, steps_per_epoch=10, start_step=0)
    assert out.start_bar().disable  # pytest's stderr is no terminal: no bar, the lines anyway
    out.eval_line(50, {"loss": 0.25}, "validation", {"loss": 0.3, "psnr": 12.0}, 1234.5)
    summary = {"steps": 100, "loss": 0.2, "test_latest": {"loss": 0.2, "mse": 0.2}}
    summary |= {"test_best": {"loss": 0.19}, "best_step": 80, "best_validation_loss": 0.21}
    out.final(summary, tmp_path)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("step 50/100 epoch 5.0/10.0 | train loss 0.25 | validation ")
    assert "loss 0.3 psnr 12 | 1,234 img/s | elapsed " in lines[0] and " ETA " in lines[0]
    assert lines[1] == "done: 100 steps; test: loss 0.2 mse 0.2"
    assert lines[2].startswith("best by validation: step 80 (validation loss 0.21)")
    assert lines[-2:] == [
        f"summary: {tmp_path / 'summary.json'}",
        f"next: python -m jaxae.analyze --workdir {tmp_path}",
    ]


def test_orbax_false_alarms_are_dropped_and_real_warnings_kept(caplog, monkeypatch):
    from absl import logging as absl_logging

    monkeypatch.setattr(logs._FILTER, "disk_full_seen", False)  # as in a process without one
    logs.silence_orbax_noise()
    logs.silence_orbax_noise()  # idempotent
    assert logging.getLogger("absl").filters.count(logs._FILTER) == 1
    with caplog.at_level(logging.WARNING, logger="absl"):
        absl_logging.warning("Requested `tracked_metric`; did not provide metrics.")
        absl_logging.warning(
            "Metadata file does not exist: %s", "/w/checkpoints/3/_CHECKPOINT_METADATA"
        )
        absl_logging.warning("Metadata file does not exist: %s", "/w/other_file")
        absl_logging.warning("Requested `tracked_metric` twice; something else")
        absl_logging.warning(
            "CheckpointManagerOptions.read_only=True, setting save_interval_steps=0."
        )
        absl_logging.warning("Given directory is read only=/w/checkpoints")
        absl_logging.error("Failed to run 2 Handler Commit operations: disk on fire")
    assert [r.getMessage() for r in caplog.records] == [
        "Metadata file does not exist: /w/other_file",
        "Requested `tracked_metric` twice; something else",
        "Failed to run 2 Handler Commit operations: disk on fire",  # no full disk seen: kept
    ]
