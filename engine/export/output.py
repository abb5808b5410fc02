"""The export's files written together: both or neither, never a truncated playbook that still parses.

Each file goes to a temporary file beside its place (same directory, so same filesystem), flushed and
fsynced; only when every one is written are they renamed into place, and the directory is fsynced. A write
that fails (a full disk, a file size limit, no permission) removes the temporary files and leaves the files
of an earlier export as they were: `CannotWrite`, exit 73.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from engine.errors import CannotWrite


def write_together(directory: Path, files: Mapping[str, str]) -> None:
    """Write `files` (name → text) into `directory`, created if need be; all of them or none."""
    written: list[tuple[Path, Path]] = []
    name = ""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            written.append((_temporary(directory, name, text), directory / name))
        for temporary, final in written:
            name = final.name
            os.replace(temporary, final)
        _fsync(directory)
    except OSError as error:
        for temporary, _ in written:
            temporary.unlink(missing_ok=True)
        reason = error.strerror or str(error)
        raise CannotWrite(f"cannot write {directory / name}: {reason}; no file was changed") from error


def _temporary(directory: Path, name: str, text: str) -> Path:
    fd, path = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # as `open()` would create it, not mkstemp's 0600
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
    except OSError:
        Path(path).unlink(missing_ok=True)
        raise
    return Path(path)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
