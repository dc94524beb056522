"""Where azs-syslog keeps its files.

With ``AZS_SYSLOG_HOME`` set, everything lives under that one directory (tests always set it);
otherwise the platform's directories for the application ``azs-syslog`` are used.
platformdirs is imported only when it is needed, to keep command start-up fast.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

APP_NAME = "azs-syslog"  # the directories' name, and the APP-NAME of RFC 5424 messages
HOME_ENV = "AZS_SYSLOG_HOME"


def _home() -> Path | None:
    value = os.environ.get(HOME_ENV)
    return Path(value).expanduser() if value else None


def config_dir() -> Path:
    """Directory of the configuration file, the client certificate and the trusted CA."""
    home = _home()
    if home is not None:
        return home / "config"
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def state_dir() -> Path:
    """Directory of the durable queue and the worker's status file."""
    home = _home()
    if home is not None:
        return home / "state"
    import platformdirs

    return Path(platformdirs.user_state_dir(APP_NAME, appauthor=False))


def runtime_dir() -> Path:
    """Directory of the worker's Unix-domain socket and pid file (mode 0750: the socket is 0660
    so that producers in the service's group can reach it, and nobody else)."""
    home = _home()
    if home is not None:
        return home / "run"
    import platformdirs

    return Path(platformdirs.user_runtime_dir(APP_NAME, appauthor=False))


def config_file() -> Path:
    return config_dir() / "config.json"


def config_lock_file() -> Path:
    return config_dir() / "config.lock"


def client_chain_file() -> Path:
    """Where releases before versioned pairs stored the client chain (still read when the
    configuration names it; removed when the certificate is replaced)."""
    return config_dir() / "client-chain.pem"


def client_key_file() -> Path:
    """Where releases before versioned pairs stored the client key (see client_chain_file)."""
    return config_dir() / "client-key.pem"


def client_certificates_dir() -> Path:
    """Directory of the stored client certificate pairs (mode 0700)."""
    return config_dir() / "client-certificates"


CLIENT_CHAIN_SUFFIX = "-chain.pem"
CLIENT_KEY_SUFFIX = "-key.pem"


def client_pair_files(thumbprint: str, tag: str) -> tuple[Path, Path]:
    """The chain (the certificate, then its issuers, PEM) and the private key (PKCS#8 PEM,
    unencrypted, mode 0600) of one stored client certificate. Every import gets a pair of its
    own, named by the thumbprint and a fresh ``tag``, and the configuration names the pair in
    use: replacing the certificate switches both files at once, with the configuration."""
    directory = client_certificates_dir()
    stem = f"{thumbprint}-{tag}"
    return directory / f"{stem}{CLIENT_CHAIN_SUFFIX}", directory / f"{stem}{CLIENT_KEY_SUFFIX}"


def trusted_ca_file() -> Path:
    """The copy of the CA bundle given with ``set-syslog-server --trusted-ca``."""
    return config_dir() / "trusted-ca.pem"


def queue_file() -> Path:
    return state_dir() / "queue.sqlite3"


def status_file() -> Path:
    return state_dir() / "status.json"


def socket_file() -> Path:
    return runtime_dir() / "forwarder.sock"


def pid_file() -> Path:
    return runtime_dir() / "forwarder.pid"


def ensure_private_dir(path: Path, *, mode: int = 0o700) -> Path:
    """Create ``path`` with ``mode`` (0700 unless said otherwise) and set it if it exists.

    ``AZS_SYSLOG_HOME`` itself, when this creates it, is made 0700 too (``mkdir(parents=True)``
    would give it the umask's mode); an existing home keeps the mode its owner chose.

    A permission refused on the way is raised as ``AccessError`` naming the path, the user, the
    owner and the fix; any other failure (a full disk) as the ``OSError`` it is.
    """
    home = _home()
    try:
        if home is not None and not home.exists() and home in path.parents:
            home.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.mkdir(parents=True, exist_ok=True, mode=mode)
        info = path.stat()
        # Never change a shared directory (sticky, like /tmp) or one that belongs to someone
        # else.
        shared = info.st_mode & stat.S_ISVTX or info.st_uid != os.geteuid()
        if not shared and info.st_mode & 0o777 != mode:
            path.chmod(mode)
    except PermissionError:
        from azs_syslog.fserrors import access_error

        raise access_error(path, "use the directory", write=True) from None
    return path
