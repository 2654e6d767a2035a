"""The one home of file helpers: atomic writes (a file or a whole folder is built beside its target, then
renamed into place, so readers see the old version or the complete new one, never a part), resumable
append-only JSONL files, a cross-process lock, a file checksum, and reading a JSON or TOML file with a
one-line error."""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

logger = logging.getLogger(__name__)


def atomic_write(path: str | Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def finished_records(output: str | Path, key: str, error: type[Exception], what: str) -> dict[str, Any]:
    """The records already in the append-only JSONL file ``output``, by their ``key`` field (empty when it
    does not exist); a torn last line (a kill mid-write) is cut away first. A line that is not such a
    record raises ``error`` naming it (``what``: the kind of record, for the message)."""
    output = Path(output)
    if not output.exists():
        return {}
    data = output.read_bytes()
    keep = data if data.endswith(b"\n") or not data else data[: data.rfind(b"\n") + 1]
    if len(keep) != len(data):
        logger.warning("%s: removing a half-written last line", output)
        with open(output, "r+b") as handle:
            handle.truncate(len(keep))
    done: dict[str, Any] = {}
    # split on "\n" only: str.splitlines() would also split inside texts holding U+2028 and the like
    for lineno, line in enumerate(keep.decode("utf-8").split("\n")[:-1], start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            done[str(record[key])] = record
        except (json.JSONDecodeError, KeyError, TypeError):
            raise error(f"{output}:{lineno}: not {what}; use another output file") from None
    return done


def finished_keys(output: str | Path, key: str, error: type[Exception], what: str) -> set[str]:
    """The ``key`` of each record already in ``output`` (see ``finished_records``)."""
    return set(finished_records(output, key, error, what))


def append_lines(output: str | Path, lines: list[str]) -> None:
    """Append whole lines to ``output`` and make them durable before returning (the unit a resumable job
    may lose is the lines of one call)."""
    if not lines:
        return
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    with open(output, "a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def replace_directory(source: str | Path, target: str | Path) -> Path:
    """Move the finished folder ``source`` to ``target``; an existing ``target`` is set aside first and
    removed only after the new one is in place, so a crash leaves the old or the new folder, never none."""
    source, target = Path(source), Path(target)
    if not target.exists():
        source.rename(target)
        return target
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    target.rename(old)
    source.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return target


@contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``target`` to fill; when the block ends without an error it
    replaces ``target`` (see ``replace_directory``), with the usual permissions. On an error, or an
    interruption, the temporary folder is removed and ``target`` is left as it was."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", suffix=".tmp", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes 0700
    try:
        yield tmp
        replace_directory(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock held across processes for the duration of the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a whole file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_structured(path: str | Path, error: type[Exception], toml: bool = False) -> Any:
    """The parsed contents of a JSON file (a TOML file with ``toml=True``, whatever its name ends in); a
    file that cannot be read or parsed raises ``error`` with a one-line message naming the path."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read ({exc})") from None
    if toml:
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise error(f"{path}: not valid TOML ({exc})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
