"""The ``trajdiff`` command: one entry point, subcommands, a typed config each (tyro)."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any

import tyro

from trajdiff.errors import Terminated, TrajdiffError, stop_on_sigterm

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


@contextlib.contextmanager
def one_line_errors(prog: str) -> Iterator[None]:
    """tyro's error boxes, from parsing inside the block, made one ``trajdiff: error:`` line (exit status 2);
    --help goes out as tyro writes it."""
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            yield
    except SystemExit as stop:
        if stop.code in (0, None):
            sys.stderr.write(errors.getvalue())
            raise
        message = one_line(errors.getvalue()) or "cannot parse the arguments"
        raise TrajdiffError(f"{message} (see {prog} --help)") from None
    sys.stderr.write(errors.getvalue())  # warnings of a parse that succeeded


def one_line(box: str) -> str:
    """The message of one of tyro's error boxes: the lines between its title and its first separator."""
    lines = [line.strip().strip("│╭╮╰╯").strip() for line in box.splitlines()]
    lines = [line for line in lines if line][1:]  # the title goes
    separator = set("─-━ ")
    while lines and set(lines[0]) <= separator:
        lines = lines[1:]
    message = []
    for line in lines:
        if set(line) <= separator:
            break
        message.append(line)
    return " ".join(message)


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
                prog = f"trajdiff {' '.join(words)}"
                from trajdiff.provenance import COMMAND_LINE  # here: a typo answers without importing torch

                COMMAND_LINE[:] = ["trajdiff", *argv]
                with one_line_errors(prog):
                    default = defaults(arguments) if defaults is not None else None
                    config = tyro.cli(config_class, args=arguments, prog=prog, default=default,
                                      config=(tyro.conf.OmitArgPrefixes,))
                stop_on_sigterm()
                runner(config)
            except TrajdiffError as error:
                print(f"trajdiff: error: {error}", file=sys.stderr)
                sys.exit(2)
            except KeyboardInterrupt as stop:
                terminated = isinstance(stop, Terminated)
                print(f"trajdiff: {'terminated (SIGTERM)' if terminated else 'interrupted'}", file=sys.stderr)
                sys.exit(128 + (signal.SIGTERM if terminated else signal.SIGINT))
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
