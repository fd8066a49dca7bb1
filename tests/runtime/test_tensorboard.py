"""TensorBoard keeps its history through a kill: the event files follow metrics.jsonl."""

from jaxae.runtime.metrics import MetricWriter, truncate_after


def tensorboard_scalars(workdir, skip=("images_per_second",)):
    """{tag: [(step, value), ...]} as TensorBoard shows them for `workdir` (every event file);
    NaN as the string 'nan', so that equal histories compare equal."""
    from tensorboard.backend.event_processing import event_accumulator  # the dev extra

    acc = event_accumulator.EventAccumulator(str(workdir), size_guidance={"scalars": 0})
    acc.Reload()
    return {
        tag: [(e.step, e.value if e.value == e.value else "nan") for e in acc.Scalars(tag)]
        for tag in acc.Tags()["scalars"]
        if not tag.endswith(skip)
    }


def _write(writer, steps):
    for step in steps:
        writer.write(step, "train", {"loss": 1.0 / step, "learning_rate": 0.1, "note": "x"})
        if step % 3 == 0:
            writer.write(step, "eval", {"loss": 2.0 / step, "psnr": float("nan")})


def test_resume_restores_scalars_a_kill_lost_and_drops_those_it_redoes(tmp_path):
    reference = tmp_path / "reference"
    reference.mkdir()
    writer = MetricWriter(reference)
    _write(writer, range(1, 10))
    writer.close()

    killed = tmp_path / "killed"
    killed.mkdir()
    writer = MetricWriter(killed)
    _write(writer, range(1, 8))  # steps 1..7 in metrics.jsonl; the kill hits before any flush
    writer._file.close()  # no close() of the event writer: its buffered events are lost
    for path in killed.glob("events.out.tfevents.*"):
        path.write_bytes(b"")  # what is on disk of a never-flushed event file
    assert tensorboard_scalars(killed) == {}

    truncate_after(killed / "metrics.jsonl", 6)  # the resumed run starts at checkpoint 6
    writer = MetricWriter(killed)
    _write(writer, range(7, 10))
    writer.close()
    scalars = tensorboard_scalars(killed)
    assert scalars == tensorboard_scalars(reference)
    assert [step for step, _ in scalars["train/loss"]] == list(range(1, 10))
    assert len(list(killed.glob("events.out.tfevents.*"))) == 1


def test_flush_puts_every_scalar_so_far_on_disk(tmp_path):
    writer = MetricWriter(tmp_path)
    _write(writer, range(1, 4))
    writer.flush()  # as at every checkpoint
    assert [s for s, _ in tensorboard_scalars(tmp_path)["train/loss"]] == [1, 2, 3]
    writer.close()
