"""Parse and print sizes the way nccl-tests does: K/M/G are binary (1024^n), bare numbers are bytes."""

import re

from .errors import NcbenchError

_BINARY = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE = re.compile(r"^\s*(\d+)\s*([KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)


def parse_size(text: str | int, *, what: str = "size") -> int:
    """Return the number of bytes in '8', '64K', '128M', '1G' (nccl-tests' parsesize)."""
    if isinstance(text, int):
        return text
    match = _SIZE.match(str(text))
    if not match:
        raise NcbenchError(f"{what} {text!r} is not a size; use bytes or a K/M/G suffix, e.g. 8, 64K, 128M, 1G")
    return int(match.group(1)) * _BINARY[match.group(2).upper()]


def format_size(nbytes: int) -> str:
    """Return '8B', '64KiB', '128MiB' for exact binary multiples, else the byte count."""
    for suffix, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= scale and nbytes % scale == 0:
            return f"{nbytes // scale}{suffix}"
    return f"{nbytes}B"


def parse_int_list(text: str, *, what: str) -> list[int]:
    """Return the integers in '1,2,4' (k/M suffixes are decimal: '200k' = 200000)."""
    values = []
    for item in str(text).split(","):
        match = re.fullmatch(r"\s*(\d+)\s*([kKmM]?)\s*", item)
        if not match:
            raise NcbenchError(f"{what} {text!r}: {item.strip()!r} is not a whole number (e.g. 1,2,4 or 200k)")
        scale = {"": 1, "k": 1000, "m": 1000000}[match.group(2).lower()]
        values.append(int(match.group(1)) * scale)
    return values
