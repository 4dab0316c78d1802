"""deploy/deploy.yml against Kamal 2's documented keys (tests/deploy/kamal_schema.py), the
sections Quire's deployment needs, and .kamal/secrets holding references only."""

from __future__ import annotations

import copy
import re
import sys
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML comes with requirements-dev.txt")

sys.path.insert(0, str(Path(__file__).parent))
import kamal_schema  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "deploy.yml"
SECRETS = ROOT / ".kamal" / "secrets"


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load(DEPLOY.read_text())


def test_deploy_yml_uses_only_documented_keys(config: dict) -> None:
    assert kamal_schema.validate(config) == []


@pytest.mark.parametrize(
    ("where", "key"),
    [
        ((), "stop_timeout"),  # not a Kamal 2 key: Docker's is set through role options
        (("proxy",), "max_body"),
        (("proxy", "buffering"), "max_body_size"),
        (("accessories", "redis"), "command"),
        (("servers", "web"), "host"),
        (("env",), "secrets"),
    ],
)
def test_an_unknown_key_is_rejected(config: dict, where: tuple[str, ...], key: str) -> None:
    mutated = copy.deepcopy(config)
    node = mutated
    for part in where:
        node = node[part]
    node[key] = 1
    errors = kamal_schema.validate(mutated)
    assert any("unknown key" in e and e.startswith(".".join((*where, key))) for e in errors), errors


def test_extension_keys_are_allowed(config: dict) -> None:
    mutated = copy.deepcopy(config)
    mutated["x-anchors"] = {"anything": True}
    assert kamal_schema.validate(mutated) == []


@pytest.mark.parametrize("key", ["service", "image", "servers", "builder", "registry"])
def test_a_missing_required_section_is_rejected(config: dict, key: str) -> None:
    mutated = copy.deepcopy(config)
    del mutated[key]
    assert any(e.startswith(key) and "required" in e for e in kamal_schema.validate(mutated))


def test_a_wrong_type_is_rejected(config: dict) -> None:
    mutated = copy.deepcopy(config)
    mutated["proxy"]["app_port"] = "eight thousand"
    assert "proxy.app_port: expected int, got str" in kamal_schema.validate(mutated)


def test_quire_deployment_sections(config: dict) -> None:
    assert config["service"] == "quire"
    assert config["builder"]["arch"] == "amd64"
    assert config["registry"]["password"] == ["KAMAL_REGISTRY_PASSWORD"]
    web = config["servers"]["web"]
    assert web["hosts"]
    proxy = config["proxy"]
    assert proxy["app_port"] == 8000 and proxy["ssl"] is True and proxy["host"]
    assert proxy["healthcheck"]["path"] == "/up"
    assert proxy["forward_headers"] is True  # the app trusts exactly one hop
    assert config["env"]["clear"]["TRUSTED_PROXY_HOPS"] == 1
    # Big pushes: the proxy accepts as large a body as the app does (GIT_MAX_BODY_BYTES).
    assert proxy["buffering"]["max_request_body"] >= 2 * 1024**3
    assert proxy["response_timeout"] >= 60
    assert "quire_repos:/data/repos" in config["volumes"]
    assert {"SECRET_KEY", "DATABASE_URL"} <= set(config["env"]["secret"])
    assert config["env"]["clear"]["QUIRE_ENV"] == "production"
    assert config["env"]["clear"]["ALLOWED_HOSTS"] == proxy["host"]
    accessories = config["accessories"]
    assert accessories["postgres"]["image"].startswith("postgres:")
    assert "--appendonly yes" in accessories["redis"]["cmd"]
    for name in ("postgres", "redis"):
        assert accessories[name]["volumes"], name
        assert accessories[name]["port"].startswith("127.0.0.1:")  # never public
    assert {"console", "shell", "logs", "dbc"} <= set(config["aliases"])
    assert config["retain_containers"] >= 2
    assert web["options"]["stop-timeout"] > 25  # gunicorn's graceful_timeout


def _secrets_file() -> dict[str, str]:
    entries: dict[str, str] = {}
    for line in SECRETS.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f"not NAME=value: {line!r}"
            entries[name.strip()] = value.strip()
    return entries


def test_every_secret_named_is_in_kamal_secrets(config: dict) -> None:
    names = kamal_schema.secret_names(config)
    assert {"KAMAL_REGISTRY_PASSWORD", "SECRET_KEY", "POSTGRES_PASSWORD"} <= names
    missing = names - set(_secrets_file())
    assert not missing, f"named in deploy.yml but not in .kamal/secrets: {sorted(missing)}"


def test_kamal_secrets_holds_references_only() -> None:
    for name, value in _secrets_file().items():
        # $VAR, ${VAR} or $(command): the value comes from the environment or a manager.
        assert re.search(r"\$(\{?[A-Z_][A-Z0-9_]*\}?|\()", value), f"{name} has a literal value"


def test_deploy_yml_env_is_a_configuration_production_accepts(config: dict, tmp_path: Path) -> None:
    from app.config import Settings

    env = {name: str(value) for name, value in config["env"]["clear"].items()}
    env.update(
        SECRET_KEY="s" * 48,  # stand-ins for the secrets
        DATABASE_URL="postgresql://quire:pw@quire-postgres:5432/quire",
        REPOS_ROOT=str(tmp_path / "repos"),  # /data/repos in the container
    )
    settings = Settings.from_env(env)
    assert settings.is_production and settings.trusted_proxy_hops == 1
    settings.validate()
