"""The one exception type the CLI turns into a one-line error message."""


class TrajdiffError(Exception):
    """A user-facing error: bad input, a missing file, an incompatible config.

    The CLI prints ``trajdiff: error: <message>`` and exits with status 2; the message must
    say what is wrong and, where possible, what to do about it.
    """


def require(condition: bool, message: str) -> None:
    """Raise TrajdiffError(message) unless ``condition``: how configs validate themselves."""
    if not condition:
        raise TrajdiffError(message)
