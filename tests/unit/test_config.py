from __future__ import annotations

from pathlib import Path

import pytest

from revenge.config import ConfigError, Settings, load_settings, settings_table


def write_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "revenge.toml"
    path.write_text(text)
    return path


def test_defaults_without_file_or_env() -> None:
    s = load_settings(None, env={})
    assert s.store == "sqlite"
    assert s.cache_mb == 256
    assert s.art_cache_mb == 200
    assert s.hls_ladder == ("aac-64", "aac-128", "aac-256")
    assert s.port == 7700


def test_file_overrides_defaults_and_env_overrides_file(tmp_path: Path) -> None:
    cfg = write_toml(tmp_path, 'port = 9000\ncache_mb = 64\nstore = "redis://localhost:6379/0"\n')
    s = load_settings(cfg, env={"REVENGE_CACHE_MB": "128"})
    assert s.port == 9000  # from the file
    assert s.cache_mb == 128  # env wins over the file
    assert s.store == "redis://localhost:6379/0"


def test_overrides_win_over_env(tmp_path: Path) -> None:
    s = load_settings(None, env={"REVENGE_PORT": "8001"}, port=8002)
    assert s.port == 8002


def test_env_lists_and_paths(tmp_path: Path) -> None:
    s = load_settings(None, env={"REVENGE_LIBRARY": f"{tmp_path}/a,{tmp_path}/b",
                                 "REVENGE_HLS_LADDER": "aac-128, opus-128",
                                 "REVENGE_SCAN_ON_START": "no"})
    assert s.library == (tmp_path / "a", tmp_path / "b")
    assert s.hls_ladder == ("aac-128", "opus-128")
    assert s.scan_on_start is False


def test_toml_list(tmp_path: Path) -> None:
    cfg = write_toml(tmp_path, 'hls_ladder = ["aac-320"]\nlibrary = ["/music"]\n')
    s = load_settings(cfg, env={})
    assert s.hls_ladder == ("aac-320",)
    assert s.library == (Path("/music"),)


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"REVENGE_PORT": "eighty"}, "REVENGE_PORT"),
        ({"REVENGE_PORT": "70000"}, "REVENGE_PORT"),
        ({"REVENGE_CACHE_MB": "0"}, "REVENGE_CACHE_MB"),
        ({"REVENGE_ART_CACHE_MB": "0"}, "REVENGE_ART_CACHE_MB"),
        ({"REVENGE_STORE": "postgres://x"}, "REVENGE_STORE"),
        ({"REVENGE_HLS_LADDER": "aac-999"}, "REVENGE_HLS_LADDER"),
        ({"REVENGE_SCAN_ON_START": "maybe"}, "REVENGE_SCAN_ON_START"),
        ({"REVENGE_AAC_CODER": "best"}, "REVENGE_AAC_CODER"),
        ({"REVENGE_ENCODER_IDLE_SECONDS": "0"}, "REVENGE_ENCODER_IDLE_SECONDS"),
        ({"REVENGE_NO_SUCH_THING": "1"}, "REVENGE_NO_SUCH_THING"),
    ],
)
def test_bad_env_value_names_the_key(env: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, env=env)
    assert info.value.key == key
    assert key in str(info.value)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("port = \"x\"\n", "port"),
        ("cahce_mb = 12\n", "cahce_mb"),
        ("scan_on_start = 3\n", "scan_on_start"),
        ("segment_seconds = 0.5\n", "segment_seconds"),
    ],
)
def test_bad_file_value_names_the_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write_toml(tmp_path, text), env={})
    assert info.value.key == key


def test_unreadable_or_invalid_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.toml", env={})
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write_toml(tmp_path, "port = = 1"), env={})


def test_settings_are_immutable() -> None:
    s = Settings()
    with pytest.raises(AttributeError):
        s.port = 1  # type: ignore[misc]


def test_readme_documents_every_setting() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for key, env_name, _default in settings_table():
        assert f"`{key}`" in readme, f"README lacks setting {key}"
        assert env_name in readme, f"README lacks {env_name}"
