"""Atomic file writes: the ONE way the toolkit writes a file.

A file is written to a temporary file in the same folder, flushed, fsync'ed and renamed over the
target (os.replace), so a reader, a crash, Ctrl-C or a full disk leaves either the old file or the
complete new one, never a partial one. The temporary name carries the writer's pid:

    .<target name>.<pid>-<random>.sspnet-tmp<target suffix>

(the suffix is kept so tools that pick a format from it, such as OpenCV, still work). A process
killed with SIGKILL cannot clean up after itself, so the next write into the same folder removes
temporaries whose pid is no longer alive.

    atomic_write_json("metrics.json", {"AP50": 61.7})
    with atomic_output("clip.mp4") as tmp:      # for writers that need a path
        writer = cv2.VideoWriter(str(tmp), ...)
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

_TEMP_MARK = ".sspnet-tmp"
_TEMP_PATTERN = re.compile(r"^\..+\.(\d+)-[0-9a-f]+" + re.escape(_TEMP_MARK) + r"(\.[^.]*)?$")
_swept_folders: set[str] = set()


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return True
    return True


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporaries left in `folder` by writers that died (their pid is gone).
    Returns the removed paths. Temporaries of live processes are never touched."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_PATTERN.match(entry.name)
        if not match or _pid_alive(int(match.group(1))):
            continue
        try:
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


def temporary_path_for(path: str | os.PathLike) -> Path:
    """A fresh temporary path next to `path`, named after this process (see module docstring)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{_TEMP_MARK}{path.suffix}")


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; when the block ends without an exception the
    temporary is fsync'ed and renamed over `path`, otherwise it is deleted and `path` is untouched.
    For writers that insist on a path (OpenCV, ONNX with external data)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    folder_key = str(path.parent.resolve())
    if folder_key not in _swept_folders:
        remove_stale_temporaries(path.parent)
        _swept_folders.add(folder_key)
    tmp = temporary_path_for(path)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"the writer did not create {tmp} (for {path})")
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_folder(path.parent)


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None]) -> Path:
    """`write(f)` fills a binary file object; the result replaces `path` atomically. Returns `path`."""
    path = Path(path)
    with atomic_output(path) as tmp:
        with open(tmp, "xb") as f:
            write(f)
            f.flush()
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, data: Any, *, indent: int | None = 1, **dumps_kwargs) -> Path:
    """JSON with NaN written as null (strict JSON that every reader accepts)."""
    text = json.dumps(json_safe(data), indent=indent, allow_nan=False, **dumps_kwargs)
    return atomic_write_text(path, text + "\n")


def json_safe(value):
    """NaN / inf -> None, recursively through dicts, lists and tuples (metrics of a size range without
    ground truth are NaN; strict JSON has no NaN). atomic_write_json applies it; use it for printed JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


__all__ = [
    "atomic_output",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "json_safe",
    "remove_stale_temporaries",
    "temporary_path_for",
]
