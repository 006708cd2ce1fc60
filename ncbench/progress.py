"""Progress for long work on a terminal, and silence in logs and pipes: one stderr line rewritten in place.

steps of a long job (a fit's bootstrap draws, a report's sections) -> "label [3/6] what" while stderr is a tty.
"""

import os
import sys


class Progress:
    """Call with what is being done now; `done()` clears the line. Does nothing unless stderr is a terminal."""

    def __init__(self, label: str, total: int | None = None, stream=None):
        self.stream = stream or sys.stderr
        self.on = hasattr(self.stream, "isatty") and self.stream.isatty() and os.environ.get("TERM") != "dumb"
        self.label, self.total, self.count, self.width = label, total, 0, 0

    def __call__(self, what: str = "") -> None:
        self.count += 1
        if not self.on:
            return
        of = f"/{self.total}" if self.total else ""
        text = f"{self.label} [{self.count}{of}] {what}"
        self.stream.write("\r" + text.ljust(self.width))
        self.stream.flush()
        self.width = len(text)

    def done(self) -> None:
        if self.on and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
