"""The file format: JSON with the cmdlet's property names (``ServerName``, ``OutputSeverity``).

``parse_config`` reads and validates a file's contents, naming the file and the field of any
problem; ``serialize_config`` writes what it reads back.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from azs_syslog.config.model import ClientCertificate, ClientSettings, Config, ServerSettings
from azs_syslog.config.rules import check_config
from azs_syslog.config.vocabulary import CONFIG_VERSION
from azs_syslog.errors import ConfigError

# The properties of the file, in the order it lists them, and their attributes and types.
_SERVER_FIELDS: dict[str, tuple[str, type]] = {
    "ServerName": ("server_name", str),
    "ServerPort": ("server_port", int),
    "NoEncryption": ("no_encryption", bool),
    "SkipCertificateCheck": ("skip_certificate_check", bool),
    "SkipCNCheck": ("skip_cn_check", bool),
    "UseUDP": ("use_udp", bool),
    "TrustedCA": ("trusted_ca", str),
    "MessageFormat": ("message_format", str),
    "Framing": ("framing", str),
    "Facility": ("facility", int),
    "MaxMessageSize": ("max_message_size", int),
    "CefVersion": ("cef_version", str),
    "UdpRate": ("udp_rate", int),  # absent in files written before it existed: the default
    "UseRELP": ("use_relp", bool),
    "EventDataNames": ("event_data_names", bool),  # the same
    "SequenceNumbers": ("sequence_numbers", bool),  # likewise
    "HeartbeatInterval": ("heartbeat_interval", int),  # likewise
    # Absent in files written before failover existed: no failover server.
    "FailoverServerName": ("failover_server_name", str),
    "FailoverServerPort": ("failover_server_port", int),
    "FailoverAfter": ("failover_after", int),
}
_REQUIRED_SERVER_FIELDS = ("ServerName", "ServerPort")
_OPTIONAL_NONE = frozenset({"TrustedCA", "FailoverServerName", "FailoverServerPort"})

_CERTIFICATE_FIELDS: dict[str, str] = {
    "Subject": "subject",
    "Issuer": "issuer",
    "Thumbprint": "thumbprint",
    "NotBefore": "not_before",
    "NotAfter": "not_after",
    "ChainFile": "chain_file",
    "KeyFile": "key_file",
}

_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false"}

# Only with a failover server: files (and get-syslog-server) without one keep the shape they
# had before failover existed.
_FAILOVER_FIELDS = frozenset({"FailoverServerName", "FailoverServerPort", "FailoverAfter"})


def server_to_dict(server: ServerSettings) -> dict[str, Any]:
    return {
        name: getattr(server, attribute)
        for name, (attribute, _) in _SERVER_FIELDS.items()
        if server.has_failover or name not in _FAILOVER_FIELDS
    }


def certificate_to_dict(cert: ClientCertificate) -> dict[str, Any]:
    return {name: getattr(cert, attribute) for name, attribute in _CERTIFICATE_FIELDS.items()}


def client_to_dict(client: ClientSettings) -> dict[str, Any]:
    return {
        "Certificate": (
            certificate_to_dict(client.certificate) if client.certificate is not None else None
        ),
        "OutputSeverity": client.output_severity,
    }


def config_to_dict(config: Config) -> dict[str, Any]:
    return {
        "version": config.version,
        "generation": config.generation,
        "server": server_to_dict(config.server) if config.server is not None else None,
        "client": client_to_dict(config.client),
    }


def _object(value: object, where: str, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError("must be a JSON object", path=path, field=where)
    return value


def _typed(value: object, expected: type, where: str, path: str) -> Any:
    # bool is a subclass of int: "ServerPort": true must not pass as 1.
    if isinstance(value, expected) and not (expected is int and isinstance(value, bool)):
        return value
    raise ConfigError(
        f"must be {_TYPE_NAMES[expected]}, not {json.dumps(value)}", path=path, field=where
    )


def _unknown_keys(data: Mapping[str, Any], known: Iterable[str], where: str, path: str) -> None:
    unknown = sorted(set(data) - set(known))
    if unknown:
        field_name = f"{where} -> {unknown[0]}" if where else unknown[0]
        raise ConfigError("unknown setting", path=path, field=field_name)


def _parse_server(value: object, path: str) -> ServerSettings | None:
    if value is None:
        return None
    data = _object(value, "server", path)
    _unknown_keys(data, _SERVER_FIELDS, "server", path)
    for name in _REQUIRED_SERVER_FIELDS:
        if name not in data:
            raise ConfigError("is missing", path=path, field=f"server -> {name}")
    kwargs: dict[str, Any] = {}
    for name, (attribute, expected) in _SERVER_FIELDS.items():
        if name not in data or (name in _OPTIONAL_NONE and data[name] is None):
            continue
        kwargs[attribute] = _typed(data[name], expected, f"server -> {name}", path)
    return ServerSettings(**kwargs)


def _parse_client(value: object, path: str) -> ClientSettings:
    if value is None:
        return ClientSettings()
    data = _object(value, "client", path)
    _unknown_keys(data, ("Certificate", "OutputSeverity"), "client", path)
    severity = _typed(data.get("OutputSeverity", "Default"), str, "client -> OutputSeverity", path)
    certificate = None
    raw_cert = data.get("Certificate")
    if raw_cert is not None:
        cert_data = _object(raw_cert, "client -> Certificate", path)
        _unknown_keys(cert_data, _CERTIFICATE_FIELDS, "client -> Certificate", path)
        kwargs: dict[str, str] = {}
        for name, attribute in _CERTIFICATE_FIELDS.items():
            where = f"client -> Certificate -> {name}"
            if name not in cert_data:
                raise ConfigError("is missing", path=path, field=where)
            kwargs[attribute] = _typed(cert_data[name], str, where, path)
        certificate = ClientCertificate(**kwargs)
    return ClientSettings(certificate=certificate, output_severity=severity)


def parse_config(text: str | bytes, *, path: str = "<config>") -> Config:
    """Parse and validate the file's contents; ``ConfigError`` names ``path`` and the field."""
    try:
        data = json.loads(text)
    except UnicodeDecodeError:
        raise ConfigError("is not UTF-8 text", path=path, fix=_FIX_BROKEN) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
            path=path,
            fix=_FIX_BROKEN,
        ) from None
    try:
        root = _object(data, "(top level)", path)
        if "version" not in root:
            raise ConfigError("is missing", path=path, field="version")
        version = _typed(root["version"], int, "version", path)
        if version != CONFIG_VERSION:
            raise ConfigError(
                f"unsupported version {version} (this azs-syslog reads version {CONFIG_VERSION})",
                path=path,
                field="version",
            )
        _unknown_keys(root, ("version", "generation", "server", "client"), "", path)
        # Files written before generations existed have none: generation 0.
        generation = _typed(root.get("generation", 0), int, "generation", path)
        if generation < 0:
            raise ConfigError(f"{generation} is negative", path=path, field="generation")
        config = Config(
            version=version,
            server=_parse_server(root.get("server"), path),
            client=_parse_client(root.get("client"), path),
            generation=generation,
        )
        check_config(config, path=path)
    except ConfigError as exc:
        exc.fix = exc.fix or _FIX_BROKEN
        raise
    return config


def serialize_config(config: Config) -> bytes:
    return (json.dumps(config_to_dict(config), indent=2) + "\n").encode()


_FIX_BROKEN = (
    "correct that setting in the file, or delete the file and run set-syslog-server / "
    "set-syslog-client again"
)
