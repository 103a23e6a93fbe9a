"""The ``trajdiff`` command: one entry point, subcommands, a typed config each (tyro)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import tyro

from trajdiff.errors import TrajdiffError


def _commands() -> dict[tuple[str, ...], tuple[type, Callable[[Any], None], str]]:
    """(words) -> (config class, runner, one-line help). Imports stay local to keep --help fast."""
    from trajdiff.collect.behavior import TrainBehaviorConfig, train_behavior
    from trajdiff.data.info import DataInfoConfig, run_data_info

    return {
        ("data", "info"): (DataInfoConfig, run_data_info, "summarise a dataset"),
        ("collect", "train-behavior"): (TrainBehaviorConfig, train_behavior,
                                        "train a SAC behaviour policy (stable-baselines3)"),
    }


def _usage(commands: dict) -> str:
    lines = ["usage: trajdiff COMMAND [options]   (trajdiff COMMAND --help for its options)", "", "commands:"]
    lines += [f"  {' '.join(words):24} {help_text}" for words, (_, _, help_text) in commands.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = _commands()
    for words, (config_class, runner, _) in sorted(commands.items(), key=lambda item: -len(item[0])):
        if tuple(argv[: len(words)]) == words:
            config = tyro.cli(config_class, args=argv[len(words):], prog=f"trajdiff {' '.join(words)}")
            try:
                runner(config)
            except TrajdiffError as error:
                print(f"trajdiff: error: {error}", file=sys.stderr)
                sys.exit(2)
            except KeyboardInterrupt:
                print("trajdiff: interrupted", file=sys.stderr)
                sys.exit(130)
            return
    print(_usage(commands), file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
    sys.exit(0 if argv and argv[0] in ("-h", "--help") else 2)


if __name__ == "__main__":
    main()
