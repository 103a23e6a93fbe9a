"""The exception types the CLI turns into a one-line message, and how SIGTERM becomes one of them."""

import signal


class TrajdiffError(Exception):
    """A user-facing error: bad input, a missing file, an incompatible config.

    The CLI prints ``trajdiff: error: <message>`` and exits with status 2; the message must
    say what is wrong and, where possible, what to do about it.
    """


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is (the CLI installs the handler): every place that cleans up after
    Ctrl-C cleans up after it too; the CLI exits with status 143."""


def require(condition: bool, message: str) -> None:
    """Raise TrajdiffError(message) unless ``condition``: how configs validate themselves."""
    if not condition:
        raise TrajdiffError(message)


def stop_on_sigterm() -> None:
    """SIGTERM (kill, timeout, Slurm, docker stop) stops the process as Ctrl-C does: a run says where it
    stopped and what is kept, and a folder that never checkpointed is put back as it was."""
    def interrupt(signum: int, frame: object) -> None:
        raise Terminated

    signal.signal(signal.SIGTERM, interrupt)


def end_with_parent() -> None:
    """In a worker process: receive SIGTERM when the parent dies, even by kill -9 (Linux's PR_SET_PDEATHSIG),
    and stop on it as on Ctrl-C, so that no worker outlives the command that started it."""
    stop_on_sigterm()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the worker ends when it next finds its pipe closed
        pass
