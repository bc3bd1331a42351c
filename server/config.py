"""Server configuration: command-line flags over an optional TOML file, fully validated.

Every bad value raises :class:`ConfigError` with a one-line message naming the flag or TOML
key; the CLI prints it and exits with status 2.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

__all__ = ["Config", "ConfigError", "parse_listen", "load_config"]


class ConfigError(ValueError):
    """A configuration value is missing or invalid."""


@dataclass
class Config:
    """Everything a server needs; see docs/operations.md for each field."""

    id: str = ""
    listen: str = "127.0.0.1:7000"
    data: str = ""
    peers: list[str] = field(default_factory=list)
    cluster: str = "default"
    secret_file: str | None = None
    follower: bool = False
    commit_delay_ms: float = 2.0
    sync_window: int = 1
    sync_hot_log_mb: int = 4
    max_frame_bytes: int = 4 * 1024 * 1024
    client_max_frame_bytes: int = 1024 * 1024
    max_drift_ms: int = 60_000
    clock_offset_ms: int = 0
    log_level: str = "INFO"
    # security (docs/security.md)
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_ca: str | None = None
    members: list[str] = field(default_factory=list)
    max_dot_seq: int = 2**48
    client_token_file: str | None = None
    protect_health: bool = False
    allow_origins: list[str] = field(default_factory=list)
    client_rate: float = 0.0
    client_burst: int = 0
    max_clients: int = 1024
    max_queue: int = 16

    @property
    def tls(self) -> bool:
        """True if the listener and peer links use mutual TLS."""
        return self.tls_cert is not None

    @property
    def host(self) -> str:
        """The host part of ``listen``."""
        return parse_listen(self.listen)[0]

    @property
    def port(self) -> int:
        """The port part of ``listen``."""
        return parse_listen(self.listen)[1]


def parse_listen(value: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[::1]:PORT`` for IPv6); raise ConfigError if malformed."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"--listen: expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def _check_peer(url: Any) -> str:
    if not isinstance(url, str):
        raise ConfigError(f"--peer: expected a ws:// or wss:// URL, got {url!r}")
    parsed = urlparse(url)
    if parsed.scheme not in ("ws", "wss") or not parsed.hostname:
        raise ConfigError(f"--peer: expected a ws:// or wss:// URL, got {url!r}")
    try:
        parsed.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise ConfigError(f"--peer: bad port in {url!r}") from exc
    return url


def _check_name(name: Any, flag: str = "--member") -> str:
    if (
        not isinstance(name, str)
        or not name
        or len(name) > 64
        or not name.replace("-", "").replace("_", "").isalnum()
    ):
        raise ConfigError(f"{flag}: use letters, digits, '-' and '_' (at most 64), got {name!r}")
    return name


def _check_origin(origin: Any) -> str:
    parsed = urlparse(origin) if isinstance(origin, str) else None
    if (
        parsed is None
        or parsed.scheme not in ("http", "https")
        or not parsed.netloc
        or parsed.path not in ("", "/")
    ):
        raise ConfigError(
            f"--allow-origin: expected an origin like https://app.example, got {origin!r}"
        )
    return str(origin).rstrip("/").lower()


_TYPES = {f.name: f.type for f in fields(Config)}
_LISTS: dict[str, Callable[[Any], str]] = {
    "peers": _check_peer,
    "members": _check_name,
    "allow_origins": _check_origin,
}
_INT_RANGES = {
    "max_frame_bytes": (1024, 64 << 20),
    "client_max_frame_bytes": (1024, 64 << 20),
    "max_dot_seq": (1, 2**63 - 1),
    "max_clients": (1, 1_000_000),
    "max_queue": (1, 4096),
    "sync_window": (1, 64),
    "sync_hot_log_mb": (0, 65536),
    "client_burst": (0, 1_000_000_000),
}


def _coerce(name: str, value: Any) -> Any:
    kind = _TYPES[name]
    flag = f"--{name.replace('_', '-')}"
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{flag}: expected true or false, got {value!r}")
    elif kind == "int":
        if type(value) is not int:
            raise ConfigError(f"{flag}: expected an integer, got {value!r}")
        low, high = _INT_RANGES.get(name, (-(2**63), 2**63 - 1))
        if not low <= value <= high:
            raise ConfigError(f"{flag}: expected an integer in [{low}, {high}], got {value!r}")
    elif kind == "float":
        if type(value) not in (int, float) or value < 0:
            raise ConfigError(f"{flag}: expected a non-negative number, got {value!r}")
        value = float(value)
    elif kind == "list[str]":
        if not isinstance(value, list):
            raise ConfigError(f"{flag}: expected a list, got {value!r}")
        value = [_LISTS[name](v) for v in value]
    elif kind in ("str", "str | None"):
        if not isinstance(value, str):
            raise ConfigError(f"{flag}: expected a string, got {value!r}")
    return value


def load_config(flags: dict[str, Any], config_file: str | None = None) -> Config:
    """Build a Config from a TOML file (if given) overridden by non-None ``flags``."""
    values: dict[str, Any] = {}
    if config_file:
        try:
            raw = tomllib.loads(Path(config_file).read_text())
        except OSError as exc:
            raise ConfigError(f"--config: cannot read {config_file}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"--config: {config_file} is not valid TOML: {exc}") from exc
        for key, value in raw.items():
            name = key.replace("-", "_")
            if name not in _TYPES:
                raise ConfigError(f"{config_file}: unknown setting {key!r}")
            values[name] = _coerce(name, value)
    for name, value in flags.items():
        if value is not None and value != []:
            values[name] = _coerce(name, value)
    cfg = Config(**values)
    if not cfg.id:
        raise ConfigError("--id: a replica name is required")
    if not cfg.data:
        raise ConfigError("--data: a data directory is required")
    if not cfg.id.replace("-", "").replace("_", "").isalnum() or len(cfg.id) > 64:
        raise ConfigError(f"--id: use letters, digits, '-' and '_' (at most 64), got {cfg.id!r}")
    parse_listen(cfg.listen)
    _check_security(cfg)
    if cfg.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(
            f"--log-level: expected DEBUG, INFO, WARNING or ERROR, got {cfg.log_level!r}"
        )
    return cfg


def _check_security(cfg: Config) -> None:
    """Check the security settings (docs/security.md): files readable, TLS all or nothing."""
    from crdtsync.transport.auth import load_secret

    for flag, path in (
        ("--secret-file", cfg.secret_file),
        ("--client-token-file", cfg.client_token_file),
    ):
        if path is None:
            continue
        if not Path(path).is_file():
            raise ConfigError(f"{flag}: {path} is not a readable file")
        try:
            load_secret(path)
        except ValueError as exc:
            raise ConfigError(f"{flag}: {exc}") from exc
    if cfg.protect_health and cfg.client_token_file is None:
        raise ConfigError("--protect-health: needs --client-token-file")
    tls = {"--tls-cert": cfg.tls_cert, "--tls-key": cfg.tls_key, "--tls-ca": cfg.tls_ca}
    given = [flag for flag, path in tls.items() if path is not None]
    if given and len(given) != 3:
        missing = sorted(set(tls) - set(given))
        raise ConfigError(f"{missing[0]}: mutual TLS needs --tls-cert, --tls-key and --tls-ca")
    if given:
        _check_tls(cfg)


def _check_tls(cfg: Config) -> None:
    import ssl

    from crdtsync.transport.tls import server_context

    for url in cfg.peers:
        if not url.startswith("wss://"):
            raise ConfigError(f"--peer: with TLS, peers must be wss:// URLs, got {url!r}")
    assert cfg.tls_cert and cfg.tls_key and cfg.tls_ca
    try:
        server_context(cfg.tls_cert, cfg.tls_key, cfg.tls_ca)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"--tls-cert: cannot load the certificate, key or CA: {exc}") from exc
