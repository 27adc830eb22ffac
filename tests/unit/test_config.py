"""Settings: file, environment and errors that name the file and the field."""

from pathlib import Path

import pytest

from viss_bridge.config import ConfigError, load_settings


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = tmp_path / "bridge.toml"
    path.write_text('[bridge]\nport = 9000\nworkers = 3\n')
    settings = load_settings(path, environ={"VISS_BRIDGE_PORT": "9100"})
    assert (settings.port, settings.workers) == (9100, 3)


def test_unknown_field_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bridge.toml"
    path.write_text('port = 9000\nwokers = 3\n')
    with pytest.raises(ConfigError, match=r"bridge.toml:2: unknown field 'wokers'"):
        load_settings(path, environ={})


def test_wrong_type_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="VISS_BRIDGE_PORT.*'port' must be int"):
        load_settings(environ={"VISS_BRIDGE_PORT": "eighty"})


def test_message_log_gets_its_own_sqlite_file_unless_configured() -> None:
    settings = load_settings(environ={"VISS_BRIDGE_DATABASE_URL": "sqlite:////data/bridge.sqlite"})
    assert settings.message_log_url == "sqlite:////data/bridge-msglog.sqlite"
    settings = load_settings(environ={"VISS_BRIDGE_DATABASE_URL": "postgresql://bridge@db/bridge"})
    assert settings.message_log_url == "postgresql://bridge@db/bridge"
    settings = load_settings(environ={"VISS_BRIDGE_DATABASE_URL": "sqlite:////data/bridge.sqlite",
                                      "VISS_BRIDGE_LOG_DATABASE_URL": "sqlite:////log/chain.sqlite"})
    assert settings.message_log_url == "sqlite:////log/chain.sqlite"
