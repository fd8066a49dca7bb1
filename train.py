"""Train an autoencoder: python train.py --config configs/NAME.py --workdir DIR.

Overrides: --config.FIELD=VALUE (dotted paths, e.g. --config.model.latent_dim=16).
Rerunning the same command on the same DIR resumes from its latest checkpoint.
"""

import argparse
import json
import sys

from jaxae import config as config_lib
from jaxae import errors


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", required=True, help="a config file, e.g. configs/conv_deep.py")
    parser.add_argument("--workdir", required=True, help="where checkpoints and metrics go")
    group = parser.add_argument_group("multi-host (see README: several processes)")
    group.add_argument(
        "--coordinator_address", help="HOST:PORT of process 0; joins a multi-host run"
    )
    group.add_argument("--num_processes", type=int, help="number of processes in the run")
    group.add_argument("--process_id", type=int, help="this process's index, 0..num_processes-1")
    group.add_argument(
        "--distributed", action="store_true", help="let JAX detect the cluster (SLURM, MPI, ...)"
    )
    args, rest = parser.parse_known_args(argv)
    bad = [a for a in rest if not a.startswith("--config.")]
    if bad:
        parser.error(f"unexpected arguments {bad}; overrides look like --config.FIELD=VALUE")
    with errors.one_line_errors():
        config = config_lib.load_file(args.config)
        config_lib.apply_overrides(config, [a.removeprefix("--config.") for a in rest])
        from jaxae.fast import process  # jax imports after the arguments are checked
        from jaxae.runtime import distributed, startup

        memory = None  # the train step's memory as this config's last run measured it
        if config.compilation_cache:
            settings = json.loads(config_lib.to_json(config))
            memory = process.StepMemory.for_config(startup.cache_root() / "step_memory", settings)
        process.before_jax(config.fast_ops, memory)  # malloc: before JAX's backend starts

        startup.begin(config.profile_startup)  # --config.profile_startup=True: where time goes
        if config.compilation_cache:
            startup.enable_compilation_cache()  # and compiled steps kept without tracing
            from jaxae.runtime import programs

            programs.enable(startup.cache_root() / "programs")
        distributed.initialize(
            args.coordinator_address, args.num_processes, args.process_id, auto=args.distributed
        )
        from jaxae.train import train_and_evaluate

        startup.mark("jaxae.train imported")
        train_and_evaluate(config, args.workdir)
        startup.mark("checkpoints closed")
        if config.profile_startup:
            print(startup.report(), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
    from jaxae.runtime import startup

    startup.exit_now()  # the run's files are closed: skip Python's 0.4 s teardown of JAX
