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


def test_signed_message_freshness_settings_and_the_older_viss_name(tmp_path: Path) -> None:
    settings = load_settings(environ={})
    assert (settings.wss_max_age, settings.wss_clock_skew, settings.viss_max_age) == (300, 60, 300)
    settings = load_settings(environ={"VISS_BRIDGE_WSS_MAX_AGE": "120"})
    assert settings.viss_max_age == 120
    path = tmp_path / "bridge.toml"
    path.write_text("viss_freshness = 90\n")  # a settings file from before wss_max_age still works for /viss
    assert load_settings(path, environ={}).viss_max_age == 90
    with pytest.raises(ConfigError, match="'wss_max_age' must be at least 1"):
        load_settings(environ={"VISS_BRIDGE_WSS_MAX_AGE": "0"})


def test_keep_alive_linger_is_bounded(tmp_path: Path) -> None:
    assert load_settings(environ={}).keepalive_linger_ms == 5
    assert load_settings(environ={"VISS_BRIDGE_KEEPALIVE_LINGER_MS": "0"}).keepalive_linger_ms == 0
    path = tmp_path / "bridge.toml"
    path.write_text("keepalive_linger_ms = 250\n")
    with pytest.raises(ConfigError, match=r"bridge.toml.*'keepalive_linger_ms' must be between 0 and 100, got 250"):
        load_settings(path, environ={})
