"""The ``trajdiff`` command: one entry point, subcommands, a typed config each (tyro)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import tyro

from trajdiff.errors import TrajdiffError

Command = tuple[type, Callable[[Any], Any], str, Callable[[list[str]], Any] | None]


def _commands() -> dict[tuple[str, ...], Command]:
    """(words) -> (config class, runner, one-line help, defaults from argv or None).

    Imports stay local so that a typo answers fast.
    """
    from trajdiff.commands.bench import BenchConfig, run_bench
    from trajdiff.commands.collect import (
        CollectDatasetConfig,
        CollectMixConfig,
        CollectSuiteConfig,
        TrainBehaviorConfig,
        collect_dataset,
        collect_mix,
        collect_suite,
        train_behavior,
    )
    from trajdiff.commands.data_info import DataInfoConfig, run_data_info
    from trajdiff.commands.eval import EvalConfig, run_eval
    from trajdiff.commands.export import ExportConfig, run_export
    from trajdiff.commands.train import train
    from trajdiff.commands.train_config import TrainConfig, default_config

    return {
        ("train",): (TrainConfig, train, "train an agent on an offline dataset", default_config),
        ("eval",): (EvalConfig, run_eval, "evaluate a run or checkpoint", None),
        ("export",): (ExportConfig, run_export, "a trained policy as a torch.export program", None),
        ("data", "info"): (DataInfoConfig, run_data_info, "summarise a dataset", None),
        ("bench",): (BenchConfig, run_bench, "methods x datasets x seeds, with aggregates and plots", None),
        ("collect", "train-behavior"): (TrainBehaviorConfig, train_behavior,
                                        "train a SAC behaviour policy (stable-baselines3)", None),
        ("collect", "dataset"): (CollectDatasetConfig, collect_dataset, "build one D4RL-protocol dataset", None),
        ("collect", "suite"): (CollectSuiteConfig, collect_suite,
                               "build random/medium/medium-replay/expert/medium-expert", None),
        ("collect", "mix"): (CollectMixConfig, collect_mix, "mix datasets, labelling each episode's source", None),
    }


def _usage(commands: dict, group: str | None = None) -> str:
    lines = [f"usage: trajdiff {group + ' ' if group else ''}COMMAND [options]   (trajdiff COMMAND --help for its "
             "options; trajdiff --version)", "", "commands:"]
    lines += [f"  {' '.join(words):24} {command[2]}" for words, command in commands.items()
              if group is None or words[0] == group]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--version"]:
        from trajdiff import __version__

        print(f"trajdiff {__version__}")
        return
    commands = _commands()
    for words, (config_class, runner, _, defaults) in sorted(commands.items(), key=lambda item: -len(item[0])):
        if tuple(argv[: len(words)]) == words:
            arguments = argv[len(words):]
            try:
                default = defaults(arguments) if defaults is not None else None
                config = tyro.cli(config_class, args=arguments, prog=f"trajdiff {' '.join(words)}",
                                  default=default, config=(tyro.conf.OmitArgPrefixes,))
                runner(config)
            except TrajdiffError as error:
                print(f"trajdiff: error: {error}", file=sys.stderr)
                sys.exit(2)
            except KeyboardInterrupt:
                print("trajdiff: interrupted", file=sys.stderr)
                sys.exit(130)
            except BrokenPipeError:  # the reader left (`trajdiff train --help | head`): nothing of ours failed
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
                sys.exit(0)
            return
    groups = {words[0] for words in commands if len(words) > 1}
    asked_help = any(word in ("-h", "--help") for word in argv[:2])
    if argv and argv[0] in groups and (len(argv) == 1 or asked_help):  # `trajdiff data --help`
        print(_usage(commands, argv[0]), file=sys.stdout if asked_help else sys.stderr)
        sys.exit(0 if asked_help else 2)
    if not argv or asked_help:
        print(_usage(commands), file=sys.stdout if asked_help else sys.stderr)
        sys.exit(0 if asked_help else 2)
    unknown = " ".join(argv[:2]) if argv[0] in groups else argv[0]
    print(f"trajdiff: error: unknown command {unknown!r}\n\n{_usage(commands)}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    main()
