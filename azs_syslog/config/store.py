"""The configuration's files: private, atomic, locked; and the changes the set-* commands make.

CONTRACT (shared by every part of the package; change only with care):
* ``load_config()`` returns the current ``Config`` (an empty one when no file exists) or raises
  ``ConfigError`` naming the file and the field.
* ``update_config(change)`` reads, applies ``change(old) -> new``, validates and writes the file
  atomically under an exclusive lock; on any error the file is left untouched.
* Every successful write increments ``Config.generation`` (a file without one is generation 0).
  Producers record the generation each queued batch was rendered for; the worker uses it to
  tell a batch rendered for a newer configuration than its own (docs/architecture.md).
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import replace
from pathlib import Path

from azs_syslog import paths
from azs_syslog.config.codec import parse_config, serialize_config
from azs_syslog.config.model import Config, ServerSettings
from azs_syslog.config.rules import check_config
from azs_syslog.config.vocabulary import OutputSeverity
from azs_syslog.errors import ConfigError

LOCK_TIMEOUT = 30.0  # seconds; a command never waits forever for another one


def write_private_file(path: Path, data: bytes) -> None:
    """Atomically replace ``path`` with ``data``: mode 0600, in a 0700 directory, fsynced.

    A reader sees either the old file or the new one, never a mix.
    """
    directory = paths.ensure_private_dir(path.parent)
    temporary = directory / f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        temporary.replace(path)
    except OSError as exc:
        with suppress(OSError):
            temporary.unlink()
        raise _file_error(path, exc, "write", "cannot be written") from None
    _fsync_directory(directory)


def remove_private_file(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _file_error(path, exc, "remove", "cannot be removed") from None
    _fsync_directory(path.parent)


def _file_error(path: Path, exc: OSError, action: str, what: str) -> ConfigError:
    """A ConfigError for a failed file operation: for a refused permission it names the user,
    the refusing path's owner and mode, and the fix; for a full disk, the fix is space."""
    from azs_syslog import fserrors

    if fserrors.is_permission_error(exc):
        message, fix, _ = fserrors.access_problem(path, action, write=action != "read")
        return ConfigError(message, fix=fix)
    if fserrors.is_disk_full(exc):
        return ConfigError(
            f"{what}: {exc.strerror}", path=str(path), fix=fserrors.disk_full_fix(path)
        )
    return ConfigError(f"{what}: {exc.strerror}", path=str(path))


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def config_lock(timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the exclusive configuration lock (``flock`` on ``paths.config_lock_file()``)."""
    lock_path = paths.config_lock_file()
    paths.ensure_private_dir(lock_path.parent)
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise _file_error(lock_path, exc, "open", "cannot be opened") from None
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
                if time.monotonic() >= deadline:
                    raise ConfigError(
                        f"another azs-syslog command has held the lock for {timeout:.0f} s",
                        path=str(lock_path),
                        fix="wait for it to finish, then run this command again",
                    ) from None
                time.sleep(0.01)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def load_config(path: Path | None = None) -> Config:
    """The current configuration (of ``path``, by default the configuration file); an empty
    one when no file exists."""
    path = path or paths.config_file()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Config()
    except PermissionError as exc:
        raise _file_error(path, exc, "read", "cannot be read") from None
    except OSError as exc:
        raise ConfigError(
            f"cannot be read: {exc.strerror}",
            path=str(path),
            fix="check the file's owner and permissions (it should be mode 0600)",
        ) from None
    return parse_config(raw, path=str(path))


# Set by a command that records its changes (the ``set-*`` commands, through
# ``audit.recording``): called under the lock with (old, new) after validation and before
# anything is written, so what it records is durable before the change is. While it is set, a
# change that changes nothing writes nothing (the generation stays).
change_recorder: ContextVar[Callable[[Config, Config], None] | None] = ContextVar(
    "change_recorder", default=None
)


def _companions_unchanged(write_files: Mapping[Path, bytes], remove_files: Iterable[Path]) -> bool:
    """Whether the companion files already hold ``write_files`` and ``remove_files`` are gone."""
    for file_path, data in write_files.items():
        try:
            if file_path.read_bytes() != data:
                return False
        except OSError:
            return False
    return not any(file_path.exists() for file_path in remove_files)


def update_config(
    change: Callable[[Config], Config],
    *,
    write_files: Mapping[Path, bytes] | None = None,
    remove_files: Iterable[Path] = (),
    cleanup: Callable[[Config, Config], Iterable[Path]] | None = None,
) -> Config:
    """Apply ``change`` to the current configuration and save the result, under the lock.

    ``write_files`` (written before the configuration, so it never names a missing file) and
    ``remove_files`` (removed after it, once nothing refers to them) are companion files such
    as the client certificate. Nothing is written if ``change`` or validation fails.
    ``cleanup(old, new)`` names more files to remove after the write, under the same lock
    (so that it sees what a concurrent command wrote before it, never after).

    The written configuration's generation is the old one plus one: under the lock, so two
    writers never produce the same generation.
    """
    record = change_recorder.get()
    remove_files = tuple(remove_files)
    with config_lock():
        old = load_config()
        new = replace(change(old), generation=old.generation + 1)
        check_config(new)
        if record is not None:
            if new == old and _companions_unchanged(write_files or {}, remove_files):
                return old  # nothing to change: nothing written, nothing recorded
            record(old, new)
        for file_path, data in (write_files or {}).items():
            write_private_file(file_path, data)
        write_private_file(paths.config_file(), serialize_config(new))
        for file_path in (*remove_files, *(cleanup(old, new) if cleanup else ())):
            remove_private_file(file_path)
    return new


# ---------------------------------------------------------------------------------------------
# The changes the set-* commands make


def set_server(server: ServerSettings, *, trusted_ca_pem: bytes | None = None) -> Config:
    """Replace the server settings (as Set-SyslogServer does); store the trusted CA bundle.

    Settings not given are back to their defaults; a trusted CA stored earlier is removed
    unless a new one is given.
    """
    ca_path = paths.trusted_ca_file()
    write_files: dict[Path, bytes] = {}
    remove_files: tuple[Path, ...] = ()
    if trusted_ca_pem is not None:
        server = replace(server, trusted_ca=str(ca_path))
        write_files[ca_path] = trusted_ca_pem
    else:
        server = replace(server, trusted_ca=None)
        remove_files = (ca_path,)
    return update_config(  # which validates the whole configuration before writing anything
        lambda old: replace(old, server=server),
        write_files=write_files,
        remove_files=remove_files,
    )


def remove_server() -> Config:
    """Forget the server (forwarding stops) and the trusted CA stored with it."""
    return update_config(
        lambda old: replace(old, server=None), remove_files=(paths.trusted_ca_file(),)
    )


def set_output_severity(severity: OutputSeverity) -> Config:
    return update_config(
        lambda old: replace(old, client=replace(old.client, output_severity=severity))
    )


def remove_client_certificate(*, output_severity: OutputSeverity | None = None) -> Config:
    """Forget the client certificate and delete its PEM files."""

    def change(old: Config) -> Config:
        client = replace(old.client, certificate=None)
        if output_severity is not None:
            client = replace(client, output_severity=output_severity)
        return replace(old, client=client)

    return update_config(change, cleanup=lambda old, new: stale_client_files(new))


def stale_client_files(new: Config, old: Config | None = None) -> list[Path]:
    """The stored client certificate files that neither ``new`` nor ``old`` names: every pair
    in the pairs' directory and the fixed names of earlier releases. The pair ``old`` names is
    kept until the next change: a worker that read the previous configuration an instant
    before the switch may be loading that pair for a connection."""
    keep: set[Path] = set()
    for config in (new, old):
        cert = config.client.certificate if config is not None else None
        if cert is not None:
            keep.update((Path(cert.chain_file), Path(cert.key_file)))
    candidates = [paths.client_chain_file(), paths.client_key_file()]
    directory = paths.client_certificates_dir()
    try:
        candidates.extend(
            sorted(
                entry
                for entry in directory.iterdir()
                if entry.name.endswith((paths.CLIENT_CHAIN_SUFFIX, paths.CLIENT_KEY_SUFFIX))
            )
        )
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise _file_error(directory, exc, "read", "cannot be read") from None
    return [path for path in candidates if path not in keep and path.exists()]
