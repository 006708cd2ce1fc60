"""One exception type and the exit codes every command uses.

Verdicts follow Nagios (0 ok, 1 warning, 2 failure, 3 unknown); misuse follows sysexits.
"""

EXIT_OK = 0
EXIT_WARN = 1
EXIT_FAIL = 2  # wrong data, a failed check
EXIT_UNKNOWN = 3  # could not measure: a rank that never arrived, a timeout
EXIT_USAGE = 64  # EX_USAGE: bad flags, impossible sizes, an unavailable backend
EXIT_DATAERR = 65  # EX_DATAERR: a file that is not what it claims to be
EXIT_NOINPUT = 66  # EX_NOINPUT: a named input (a baseline file) does not exist
EXIT_UNAVAILABLE = 69  # EX_UNAVAILABLE: a tool the command needs (scontrol for --drain) is not here
EXIT_SOFTWARE = 70  # EX_SOFTWARE: a bug in ncbench


class NcbenchError(Exception):
    """A problem the user can fix; the CLI prints it as one line and exits with `exit_code`."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE):
        super().__init__(message)
        self.exit_code = exit_code
