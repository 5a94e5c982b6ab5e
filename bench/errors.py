"""The exceptions the CLI turns into one line on stderr and an exit code.

2: bad input (fix the command, the config or the files it names);
1: the environment failed (disk full, read-only, a file where a folder should be, a
   run directory in use); 130: interrupted (Ctrl-C).
"""


def first_error(err) -> str:
    """A pydantic ValidationError as one line: where, then what (`radius: Input should
    be ...`)."""
    e = err.errors()[0]
    where = ".".join(str(p) for p in e["loc"])
    return f"{where}: {e['msg']}" if where else e["msg"]


class BenchError(Exception):
    """Bad input or a missing prerequisite; the message says what to fix."""

    exit_code = 2


class EnvironmentFailure(BenchError):
    """The machine, not the input: no space, no permission, a directory in use."""

    exit_code = 1


class Interrupted(BenchError):
    """Ctrl-C; the message says how much is done and how to resume."""

    exit_code = 130
