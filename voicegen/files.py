"""Writing files so that a reader never sees a half-written one, and refusing an unwritable path before the work.

Output files follow the process umask (like any other tool's: usually rw-r--r--), or keep the permission bits of
the file they replace. A missing output folder is created, with its parents, when the file is written.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
import threading
from pathlib import Path
from typing import Callable

from . import interrupts

_umask_lock = threading.Lock()


def _umask() -> int:
    """The process umask (read by setting and restoring it; under a lock, as os.umask has no getter)."""
    with _umask_lock:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _file_mode(path: Path) -> int:
    """Permission bits for a new file at `path`: those of the file it replaces, else 0o666 minus the umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~_umask()


def check_output(path: str | os.PathLike) -> Path:
    """Check that a file can be written at `path` before any work is done; ValueError naming `path` if not.

    Refused: an existing directory, a path below a file, a folder that cannot be created, or one that exists but
    is not writable (tested by creating and removing a temporary file there, so read-only mounts are caught too).
    A missing folder is not created here (nothing is left behind if the work fails); `atomic_write` creates it.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"cannot write {str(path)!r}: it is a directory; give a file name")
    folder = path.parent
    while not folder.exists():  # the nearest existing ancestor must be a folder we may create things in
        if folder.parent == folder:
            break
        folder = folder.parent
    if not folder.is_dir():
        raise ValueError(f"cannot write {str(path)!r}: {str(folder)!r} is not a directory")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=folder)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise ValueError(f"cannot write {str(path)!r}: {str(folder)!r} is not writable ({exc.strerror})") from None
        raise ValueError(f"cannot write {str(path)!r}: no file can be created in {str(folder)!r} "
                         f"({exc.strerror})") from None
    os.close(fd)
    os.unlink(probe)
    return path


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> Path:
    """Call write(tmp_path) on a temporary file beside `path`, then rename it to `path`.

    If `write` fails (or is interrupted) the temporary file is removed and nothing is left at `path`. Missing
    folders are created. The file gets the permission bits a plain `open(path, "w")` would give (umask), or those
    of the file it replaces. An OSError names `path`, never the temporary file.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        os.close(fd)
        os.chmod(tmp, _file_mode(path))
        write(tmp)
        interrupts.check()  # a Ctrl-C that compiled code swallowed while writing: nothing at `path`
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and (tmp is None or exc.filename in (tmp, None) or tmp in str(exc)):
            if exc.errno is None:
                raise OSError(f"cannot write {str(path)!r}: {exc}") from exc
            raise OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(path)) from exc
        if tmp is not None and isinstance(exc, Exception) and tmp in str(exc):  # e.g. libsndfile's errors
            raise OSError(f"cannot write {str(path)!r}: {str(exc).replace(tmp, str(path))}") from exc
        raise
    return path
