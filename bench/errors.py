"""The one exception type the CLI turns into a one-line message and exit code 2."""


class BenchError(Exception):
    """Bad input or a missing prerequisite; the message says what to fix."""
