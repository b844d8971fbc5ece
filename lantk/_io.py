"""Writing files safely: one atomic write for results, run records, kernel tiles and the book.

Standard library only, so the command line and :mod:`lantk.book` can import it without
pulling in JAX.

Example:
    >>> import stat, tempfile
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "sub" / "a.txt"
    >>> _ = atomic_write(path, "hello\\n")
    >>> path.read_text()
    'hello\\n'
    >>> stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask()
    True
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write", "umask"]


def umask() -> int:
    """The process's current umask (read without changing it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path, data: bytes | str | Callable[[BinaryIO], object]) -> Path:
    """Write ``data`` to ``path`` atomically and return ``path``.

    The data go to a temporary file in the same folder (created if missing), which is
    fsynced, given the permissions a plain ``open`` would give under the current umask
    (``mkstemp`` makes it 0600, which a shared ``runs/`` or cache folder cannot read) and
    renamed into place; the rename is then made durable by an fsync of the folder. Readers
    see the old file or the new one, never a partial one; on any error the temporary file is
    removed and ``path`` is untouched.

    Args:
        path: the file to write.
        data: bytes, a string (written as UTF-8), or a function that writes into the open
            binary file (``lambda f: np.savez(f, **arrays)``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def strip_ansi(text: str) -> str:
    """``text`` without ANSI escape sequences (colours in tracebacks, progress bars)."""
    import re

    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)


def say(msg: str, quiet: bool) -> None:
    """One progress line on stderr, unless ``quiet``."""
    if not quiet:
        import sys

        print(msg, file=sys.stderr, flush=True)
