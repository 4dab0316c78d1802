"""The keys Kamal 2 accepts in deploy.yml, written down from its configuration docs.

Source: Kamal's ``lib/kamal/configuration/docs/*.yml`` (configuration, servers, role, proxy,
registry, builder, env, accessory, alias, boot, ssh, sshkit, logging). Kamal refuses a key it
does not know ("Kamal will not accept unrecognized keys"), except top-level ``x-*``
extensions; so does :func:`validate`. Sections whose docs were not read in detail
(``output``) are accepted as free-form mappings. Update this file when Kamal adds a key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# --- the vocabulary --------------------------------------------------------------------------


@dataclass(frozen=True)
class Map:
    """A mapping with exactly these keys (``required`` must be present)."""

    keys: dict[str, Any]
    required: tuple[str, ...] = ()


@dataclass(frozen=True)
class AnyMap:
    """A free-form mapping (labels, docker options, build args)."""


@dataclass(frozen=True)
class ListOf:
    item: Any


@dataclass(frozen=True)
class OneOf:
    options: tuple[Any, ...]


@dataclass(frozen=True)
class Special:
    """A shape with rules of its own: ``env``, ``servers``, a role, host lists."""

    name: str


STR, INT, BOOL = str, int, bool
SCALAR = OneOf((str, int, float, bool))
STR_OR_LIST = OneOf((str, ListOf(str)))
SIZE = OneOf((int, str))  # 40_000_000 or "40m"

# --- sections --------------------------------------------------------------------------------

REGISTRY = Map(
    {
        "server": STR,
        # A plain value, or a one-item list naming a secret.
        "username": STR_OR_LIST,
        "password": STR_OR_LIST,
    }
)

PROXY = Map(
    {
        "host": STR,
        "hosts": ListOf(str),
        "app_port": INT,
        "ssl": BOOL,
        "certificate_pem": STR,
        "private_key_pem": STR,
        "ssl_redirect": BOOL,
        "forward_headers": BOOL,
        "response_timeout": INT,
        "healthcheck": Map({"interval": INT, "path": STR, "timeout": INT}),
        "buffering": Map(
            {
                "requests": BOOL,
                "responses": BOOL,
                "max_request_body": SIZE,
                "max_response_body": SIZE,
                "memory": SIZE,
            }
        ),
        "logging": Map({"request_headers": ListOf(str), "response_headers": ListOf(str)}),
    }
)

LOGGING = Map({"driver": STR, "options": AnyMap()})

ROLE = Map(
    {
        "hosts": Special("hosts"),
        "cmd": STR,
        "options": AnyMap(),
        "logging": LOGGING,
        "proxy": OneOf((bool, PROXY)),
        "labels": AnyMap(),
        "env": Special("role_env"),
        "asset_path": STR,
    },
    required=("hosts",),
)

BUILDER = Map(
    {
        "driver": STR,
        "arch": STR_OR_LIST,
        "remote": STR,
        "local": BOOL,
        "cache": Map({"type": STR, "options": STR, "image": STR}),
        "context": STR,
        "dockerfile": STR,
        "target": STR,
        "args": AnyMap(),
        "secrets": ListOf(str),
        "ssh": STR,
    },
    required=("arch",),
)

MOUNT = OneOf(
    (
        str,
        Map(
            {"local": STR, "remote": STR, "mode": STR, "owner": STR, "options": STR},
            required=("local", "remote"),
        ),
    )
)

ACCESSORY = Map(
    {
        "service": STR,
        "image": STR,
        "registry": REGISTRY,
        "host": STR,
        "hosts": ListOf(str),
        "role": STR,
        "roles": ListOf(str),
        "tag": STR,
        "tags": ListOf(str),
        "cmd": STR,
        "port": OneOf((str, int)),
        "labels": AnyMap(),
        "options": AnyMap(),
        "env": Special("env"),
        "files": ListOf(MOUNT),
        "directories": ListOf(MOUNT),
        "volumes": ListOf(str),
        "network": STR,
        "proxy": PROXY,
    },
    required=("image",),
)

SSH = Map(
    {
        "user": STR,
        "port": OneOf((str, int)),
        "proxy": STR,
        "proxy_command": STR,
        "log_level": STR,
        "keys_only": BOOL,
        "keys": ListOf(str),
        "key_data": ListOf(str),
        "config": OneOf((bool, str)),
    }
)

ROOT = Map(
    {
        "service": STR,
        "image": STR,
        "labels": AnyMap(),
        "volumes": ListOf(str),
        "registry": REGISTRY,
        "servers": Special("servers"),
        "env": Special("env"),
        "asset_path": STR,
        "hooks_path": STR,
        "hooks_output": OneOf((str, AnyMap())),
        "secrets_path": STR,
        "error_pages_path": STR,
        "require_destination": BOOL,
        "primary_role": STR,
        "allow_empty_roles": BOOL,
        "retain_containers": INT,
        "minimum_version": STR,
        "readiness_delay": INT,
        "deploy_timeout": INT,
        "drain_timeout": INT,
        "run_directory": STR,
        "ssh": SSH,
        "builder": BUILDER,
        "accessories": Special("accessories"),
        "proxy": OneOf((bool, PROXY)),
        "sshkit": Map({"max_concurrent_starts": INT, "pool_idle_timeout": INT, "dns_retries": INT}),
        "boot": Map({"limit": OneOf((int, str)), "wait": INT}),
        "logging": LOGGING,
        "output": AnyMap(),
        "aliases": Special("aliases"),
    },
    # Kamal 2 needs these; `registry` may go only with a localhost registry (see validate).
    required=("service", "image", "servers", "builder"),
)

ENV_SHAPE = Map({"clear": AnyMap(), "secret": ListOf(str), "tags": AnyMap()})
ALIAS_NAME = re.compile(r"^[a-z0-9_-]+$")

# --- the validator ---------------------------------------------------------------------------


def validate(config: Any) -> list[str]:
    """Every way ``config`` (a parsed deploy.yml) breaks Kamal's schema; [] when valid."""
    errors: list[str] = []
    if not isinstance(config, dict):
        return ["the configuration must be a mapping"]
    extensions = {k: v for k, v in config.items() if str(k).startswith("x-")}
    body = {k: v for k, v in config.items() if k not in extensions}
    _check(body, ROOT, "", errors)
    registry = config.get("registry")
    server = str((registry or {}).get("server", "")) if isinstance(registry, dict) else ""
    if not server.startswith("localhost"):
        if registry is None:
            errors.append("registry: required (only a localhost registry may go without)")
        elif isinstance(registry, dict):
            for key in ("username", "password"):
                if key not in registry:
                    errors.append(f"registry.{key}: required for a remote registry")
    return errors


def _check(value: Any, spec: Any, path: str, errors: list[str]) -> None:
    where = path or "(root)"
    if spec in (str, int, bool):
        ok = isinstance(value, spec) and not (spec is int and isinstance(value, bool))
        if not ok:
            errors.append(f"{where}: expected {spec.__name__}, got {type(value).__name__}")
    elif spec is float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            errors.append(f"{where}: expected a number, got {type(value).__name__}")
    elif isinstance(spec, AnyMap):
        if not isinstance(value, dict):
            errors.append(f"{where}: expected a mapping")
    elif isinstance(spec, ListOf):
        if not isinstance(value, list):
            errors.append(f"{where}: expected a list")
            return
        for i, item in enumerate(value):
            _check(item, spec.item, f"{path}[{i}]", errors)
    elif isinstance(spec, OneOf):
        for option in spec.options:
            trial: list[str] = []
            _check(value, option, path, trial)
            if not trial:
                return
        # Report the closest option's errors: the mapping one when a mapping was given.
        best: list[str] = []
        for option in spec.options:
            trial = []
            _check(value, option, path, trial)
            if isinstance(value, dict) == isinstance(option, Map | AnyMap):
                best = trial
        errors.extend(best or [f"{where}: unexpected {type(value).__name__}"])
    elif isinstance(spec, Map):
        if not isinstance(value, dict):
            errors.append(f"{where}: expected a mapping")
            return
        for key in value:
            if key not in spec.keys:
                errors.append(f"{_join(path, key)}: unknown key (Kamal refuses unknown keys)")
        for key in spec.required:
            if key not in value:
                errors.append(f"{_join(path, key)}: required")
        for key, item in value.items():
            if key in spec.keys:
                _check(item, spec.keys[key], _join(path, key), errors)
    elif isinstance(spec, Special):
        SPECIAL[spec.name](value, path, errors)
    else:  # pragma: no cover - a mistake in this file
        raise TypeError(f"unknown spec {spec!r}")


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _hosts(value: Any, path: str, errors: list[str]) -> None:
    """A list of hosts; an entry may carry tags: ``- 10.0.0.2: [tag1, tag2]``."""
    if not isinstance(value, list) or not value:
        errors.append(f"{path}: expected a non-empty list of hosts")
        return
    for i, host in enumerate(value):
        if isinstance(host, str):
            continue
        if isinstance(host, dict) and len(host) == 1:
            _check(next(iter(host.values())), STR_OR_LIST, f"{path}[{i}]", errors)
            continue
        errors.append(f"{path}[{i}]: a host name, or one host mapped to its tags")


def _servers(value: Any, path: str, errors: list[str]) -> None:
    if isinstance(value, list):
        _hosts(value, path, errors)  # all implicitly in the web role
        return
    if not isinstance(value, dict) or not value:
        errors.append(f"{path}: a list of hosts or a mapping of roles")
        return
    for role, spec in value.items():
        role_path = _join(path, role)
        if isinstance(spec, list):
            _hosts(spec, role_path, errors)
        else:
            _check(spec, ROLE, role_path, errors)


def _env(value: Any, path: str, errors: list[str], allow_tags: bool = True) -> None:
    if not isinstance(value, dict):
        errors.append(f"{path}: expected a mapping")
        return
    if not {"clear", "secret", "tags"} & set(value):
        for key, item in value.items():  # the plain form: NAME: value
            _check(item, SCALAR, _join(path, key), errors)
        return
    _check(value, ENV_SHAPE, path, errors)
    if "tags" in value:
        if not allow_tags:
            errors.append(f"{path}.tags: tags are only allowed in the top-level env")
        elif isinstance(value["tags"], dict):
            for tag, tag_env in value["tags"].items():
                _env(tag_env, _join(_join(path, "tags"), tag), errors, allow_tags=False)
    if isinstance(value.get("clear"), dict):
        for key, item in value["clear"].items():
            _check(item, SCALAR, _join(_join(path, "clear"), key), errors)


def _role_env(value: Any, path: str, errors: list[str]) -> None:
    _env(value, path, errors, allow_tags=False)


def _accessories(value: Any, path: str, errors: list[str]) -> None:
    if not isinstance(value, dict):
        errors.append(f"{path}: expected a mapping of accessories")
        return
    for name, spec in value.items():
        acc_path = _join(path, name)
        _check(spec, ACCESSORY, acc_path, errors)
        if isinstance(spec, dict):
            placements = [k for k in ("host", "hosts", "role", "roles", "tag", "tags") if k in spec]
            if len(placements) != 1:
                errors.append(f"{acc_path}: exactly one of host, hosts, role, roles, tag, tags")


def _aliases(value: Any, path: str, errors: list[str]) -> None:
    if not isinstance(value, dict):
        errors.append(f"{path}: expected a mapping")
        return
    for name, command in value.items():
        if not ALIAS_NAME.match(str(name)):
            errors.append(f"{_join(path, name)}: lowercase letters, digits, - and _ only")
        _check(command, STR, _join(path, name), errors)


SPECIAL = {
    "hosts": _hosts,
    "servers": _servers,
    "env": _env,
    "role_env": _role_env,
    "accessories": _accessories,
    "aliases": _aliases,
}


# --- secrets ---------------------------------------------------------------------------------


def secret_names(config: dict[str, Any]) -> set[str]:
    """Every secret deploy.yml takes from .kamal/secrets.

    ``env.secret`` entries (root, its tags, roles, accessories; ``NAME:SECRET`` aliases
    read ``SECRET``), ``registry.username|password`` given as a one-item list, and the
    proxy's ``certificate_pem`` / ``private_key_pem``.
    """
    names: set[str] = set()

    def env_secrets(env: Any) -> None:
        if not isinstance(env, dict):
            return
        for entry in env.get("secret") or []:
            names.add(str(entry).split(":", 1)[-1])
        for tag_env in (env.get("tags") or {}).values():
            env_secrets(tag_env)

    def registry_secrets(registry: Any) -> None:
        if isinstance(registry, dict):
            for key in ("username", "password"):
                if isinstance(registry.get(key), list):
                    names.update(str(v) for v in registry[key])

    def proxy_secrets(proxy: Any) -> None:
        if isinstance(proxy, dict):
            for key in ("certificate_pem", "private_key_pem"):
                if key in proxy:
                    names.add(str(proxy[key]))

    env_secrets(config.get("env"))
    registry_secrets(config.get("registry"))
    proxy_secrets(config.get("proxy"))
    servers = config.get("servers")
    if isinstance(servers, dict):
        for role in servers.values():
            if isinstance(role, dict):
                env_secrets(role.get("env"))
                proxy_secrets(role.get("proxy"))
    for accessory in (config.get("accessories") or {}).values():
        if isinstance(accessory, dict):
            env_secrets(accessory.get("env"))
            registry_secrets(accessory.get("registry"))
    return names
