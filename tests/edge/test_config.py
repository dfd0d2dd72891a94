"""The daemon's configuration: strict TOML loading, readable errors with locations, secrets."""

from __future__ import annotations

import dataclasses
import logging
import shutil
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from edge.config import (
    BaslerCameraConfig,
    Config,
    ConfigError,
    ReplayCameraConfig,
    TensorRtBackendConfig,
    check_config_main,
    load_config,
)
from hw.camera.settings import BaslerSettings, ReplaySettings

EXAMPLE = Path(__file__).parents[2] / "examples" / "partsight.toml"
PASSWORD = "s3cret-Pa55word"

MINIMAL = """
[station]
site = "plant-1"
line = "line-3"
station = "top"

[camera]
kind = "replay"
folder = "images"

[engine]
path = "engine"

[mqtt]
host = "broker.local"

[reject]
kind = "none"
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A config folder with the paths MINIMAL references."""
    (tmp_path / "images").mkdir()
    (tmp_path / "engine").mkdir()
    return tmp_path


def write(folder: Path, text: str, name: str = "partsight.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def errors_of(path: Path, environ: dict[str, str] | None = None) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ=environ or {})
    assert caught.value.errors, "a ConfigError always lists its problems"
    return dict(caught.value.errors)


# --- the example and the happy path -------------------------------------------------------


def test_example_config_passes_check_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The example uses two relative paths (resolved against its own folder): give it them.
    config_file = tmp_path / "partsight.toml"
    shutil.copy(EXAMPLE, config_file)
    (tmp_path / "images").mkdir()
    (tmp_path / "engine").mkdir()
    assert check_config_main(config_file) == 0
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert lines[0] == f"{config_file}: OK"
    assert "camera replay" in lines[1]
    assert str(tmp_path / "engine") in lines[1]
    assert "mqtt localhost:1883" in lines[1]
    assert lines[2].startswith("mqtt client id: partsight-plant-1-line-3-housing-top-")
    assert out.err == ""


def test_minimal_config_gets_the_documented_defaults(folder: Path) -> None:
    config = load_config(write(folder, MINIMAL), environ={})
    assert config.station.state_dir == Path("/var/lib/partsight")
    assert config.mqtt.outbox == Path("/var/lib/partsight/mqtt-outbox.sqlite")
    assert config.part_ids_file == Path("/var/lib/partsight/part-ids")
    assert config.mqtt.enabled and config.mqtt.port == 1883
    assert config.engine.backend.kind == "onnxruntime"
    assert config.pipeline.trigger.free_run and config.pipeline.trigger.rate_hz is None
    assert config.registration.device == "auto"
    assert config.logging.journald == "auto"
    assert config.mqtt.password is None


def test_relative_paths_resolve_against_the_config_folder(
    folder: Path, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    config = load_config(write(folder, MINIMAL), environ={})
    assert isinstance(config.camera, ReplayCameraConfig)
    assert config.camera.folder == folder / "images"
    assert config.engine.path == folder / "engine"


def test_state_directory_from_systemd_and_explicit_value_wins(folder: Path) -> None:
    env = {"STATE_DIRECTORY": "/var/lib/partsight-a:/var/lib/other"}
    config = load_config(write(folder, MINIMAL), environ=env)
    assert config.station.state_dir == Path("/var/lib/partsight-a")
    assert config.mqtt.outbox == Path("/var/lib/partsight-a/mqtt-outbox.sqlite")

    text = MINIMAL.replace('station = "top"', 'station = "top"\nstate_dir = "state"')
    text += '\n[engine.backend]\nkind = "tensorrt"\n'
    config = load_config(write(folder, text), environ=env)
    assert config.station.state_dir == folder / "state"
    assert config.mqtt.outbox == folder / "state" / "mqtt-outbox.sqlite"
    assert isinstance(config.engine.backend, TensorRtBackendConfig)
    assert config.engine.backend.cache_dir == folder / "state" / "cache" / "tensorrt"


def test_camera_configs_map_onto_the_hw_settings(folder: Path) -> None:
    text = MINIMAL.replace('folder = "images"', 'folder = "images"\nfree_run = true\nloop = true')
    replay = load_config(write(folder, text), environ={}).camera
    settings = replay.to_settings()
    assert isinstance(settings, ReplaySettings)
    assert settings.folder == folder / "images" and settings.rate_hz is None and settings.loop

    basler = """
kind = "basler"
serial = "40012345"
trigger = "hardware"
exposure_us = 2500
roi = [0, 8, 640, 480]
pixel_format = "Mono12"
"""
    text = MINIMAL.replace('kind = "replay"\nfolder = "images"', basler)
    camera = load_config(write(folder, text), environ={}).camera
    assert isinstance(camera, BaslerCameraConfig)
    hw = camera.to_settings()
    assert isinstance(hw, BaslerSettings)
    assert (hw.serial, hw.trigger, hw.exposure_us, hw.roi) == (
        "40012345",
        "hardware",
        2500.0,
        (0, 8, 640, 480),
    )
    assert hw.grab_timeout_s == BaslerSettings(serial="x").grab_timeout_s  # same defaults


def test_camera_models_cover_every_hw_settings_field() -> None:
    for model, settings in (
        (BaslerCameraConfig, BaslerSettings),
        (ReplayCameraConfig, ReplaySettings),
    ):
        hw_fields = {f.name for f in dataclasses.fields(settings)}
        assert hw_fields <= set(model.model_fields), f"{model.__name__} misses hw fields"


def test_mqtt_defaults(folder: Path) -> None:
    config = load_config(write(folder, MINIMAL), environ={})
    assert config.mqtt.host == "broker.local"
    assert (config.mqtt.client_id, config.mqtt.protocol) == ("", "5")
    assert config.mqtt.max_packet_size is None and config.mqtt.publish_heatmaps is False


def test_publishing_heatmaps_is_refused_until_it_exists(folder: Path) -> None:
    text = MINIMAL.replace(
        'host = "broker.local"', 'host = "broker.local"\npublish_heatmaps = true'
    )
    errors = errors_of(write(folder, text))
    assert "heatmaps are not published yet" in errors["mqtt.publish_heatmaps"]


def test_the_config_is_immutable(folder: Path) -> None:
    config = load_config(write(folder, MINIMAL), environ={})
    with pytest.raises(ValidationError):
        config.mqtt.port = 1  # type: ignore[misc]


def test_every_field_is_described() -> None:
    missing = [
        f"{model.__name__}.{name}"
        for model in _all_models(Config)
        for name, field in model.model_fields.items()
        if not field.description
    ]
    assert missing == []


# --- errors, each naming its field ---------------------------------------------------------


def test_a_typo_in_a_key_is_an_error_with_a_suggestion(folder: Path) -> None:
    text = MINIMAL.replace('host = "broker.local"', 'host = "broker.local"\nprot = 1884')
    text = text.replace('folder = "images"', 'folder = "images"\nloop_ = true')
    errors = errors_of(write(folder, text))
    assert errors["mqtt.prot"] == "unknown key (did you mean 'port'?)"
    assert errors["camera.loop_"] == "unknown key (did you mean 'loop'?)"
    assert set(errors) == {"mqtt.prot", "camera.loop_"}


def test_an_unknown_key_in_a_kind_section_is_located_without_the_kind(folder: Path) -> None:
    """Field input 11: `reject.none.delay_msec` named a key path that is nowhere in the file.
    Every section chosen by `kind` (reject, camera, engine.backend), and every error in one."""
    text = MINIMAL.replace('[reject]\nkind = "none"\n', '[reject]\nkind = "none"\ndelay_msec = 3\n')
    text = text.replace('folder = "images"', 'folder = "images"\nrate_hzz = 2.0')
    text += '\n[engine.backend]\nkind = "onnxruntime"\nthreads = "two"\n'
    errors = errors_of(write(folder, text))
    assert errors == {
        "reject.delay_msec": "unknown key (known here: kind)",
        "camera.rate_hzz": "unknown key (did you mean 'rate_hz'?)",
        "engine.backend.threads": "Input should be a valid integer (got 'two')",
    }
    timed = MINIMAL.replace(
        '[reject]\nkind = "none"\n', '[reject]\nkind = "camera_line"\ndelay_msec = 30\n'
    )
    errors = errors_of(write(folder, timed))
    assert errors["reject.delay_msec"] == "unknown key (did you mean 'delay_ms'?)"
    assert errors["reject.delay_ms"] == "missing (required)"


def test_a_utf8_byte_order_mark_is_accepted(folder: Path) -> None:
    """Field input 11: Windows editors start the file with one."""
    path = folder / "partsight.toml"
    path.write_bytes(b"\xef\xbb\xbf" + MINIMAL.encode())
    assert load_config(path, environ={}).station.site == "plant-1"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_utf16_or_utf32_text_is_refused_naming_its_encoding(folder: Path, encoding: str) -> None:
    path = folder / "partsight.toml"
    path.write_bytes(MINIMAL.encode(encoding))  # Python writes the byte-order mark first
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    name = encoding.upper()
    assert caught.value.errors == [
        ("", f"{name} text (its byte-order mark says so); save it as UTF-8")
    ]


def test_a_wrong_type_is_an_error_naming_the_field(folder: Path) -> None:
    text = MINIMAL.replace('host = "broker.local"', 'host = "broker.local"\nport = "1883"')
    text += "\n[pipeline]\ndeadline_ms = 0.5\n"
    errors = errors_of(write(folder, text))
    assert "valid integer" in errors["mqtt.port"] and "'1883'" in errors["mqtt.port"]
    assert "valid integer" in errors["pipeline.deadline_ms"]


def test_missing_required_fields_and_sections(folder: Path) -> None:
    text = MINIMAL.replace('site = "plant-1"\n', "").replace('[reject]\nkind = "none"\n', "")
    errors = errors_of(write(folder, text))
    assert errors["station.site"] == "missing (required)"
    assert errors["reject"] == "missing (required)"


def test_bad_station_names(folder: Path) -> None:
    text = MINIMAL.replace('"plant-1"', '"plant/1"').replace('"line-3"', '"line+3"')
    text = text.replace('station = "top"', 'station = ""')
    errors = errors_of(write(folder, text))
    assert "/" in errors["station.site"]
    assert "+" in errors["station.line"]
    assert "empty" in errors["station.station"]


def test_unknown_or_missing_kind(folder: Path) -> None:
    text = MINIMAL.replace('kind = "replay"', 'kind = "webcam"')
    text += "\n[engine.backend]\nthreads = 2\n"
    errors = errors_of(write(folder, text))
    assert "'webcam' is not one of" in errors["camera.kind"]
    assert "'basler'" in errors["camera.kind"] and "'replay'" in errors["camera.kind"]
    assert errors["engine.backend.kind"].startswith("missing")


def test_the_engine_is_a_folder_or_the_store(folder: Path) -> None:
    keys = folder / "trusted-keys"
    keys.mkdir()
    store = f'[engine]\nstore = true\ntrusted_keys = "{keys}"\n'
    config = load_config(write(folder, MINIMAL.replace('[engine]\npath = "engine"\n', store)))
    assert config.engine.store and config.engine.path is None
    assert config.engine.trusted_keys == keys
    assert config.engine_store_dir == config.state_dir / "engines"
    assert f"engine store {config.engine_store_dir} (onnxruntime)" in config.summary()

    cases = {
        'path = "engine"\nstore = true\n': "set either path (an engine folder) or store = true",
        "threshold = 2.0\n": "set path (an engine folder) or store = true (the engine store)",
        "store = true\n": "store = true needs trusted_keys (the folder of public keys",
        f'store = true\ntrusted_keys = "{keys}"\nthreshold = 2.0\n': "threshold overrides one",
    }
    for engine, message in cases.items():
        text = MINIMAL.replace('[engine]\npath = "engine"\n', "[engine]\n" + engine)
        assert errors_of(write(folder, text))["engine"].startswith(message), engine
    missing = MINIMAL.replace('path = "engine"', 'store = true\ntrusted_keys = "nowhere"')
    assert errors_of(write(folder, missing))["engine.trusted_keys"].endswith("does not exist")


def test_missing_paths_are_errors(folder: Path) -> None:
    shutil.rmtree(folder / "images")
    errors = errors_of(write(folder, MINIMAL))
    assert errors["camera.folder"] == f"{folder / 'images'} does not exist"


def test_toml_syntax_errors_carry_line_and_column(folder: Path) -> None:
    path = write(folder, '[station]\nsite = "plant-1\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    [(where, message)] = caught.value.errors
    assert where == "line 2, column 16"
    assert message.startswith("not valid TOML")


def test_an_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "absent.toml", environ={})
    assert caught.value.errors == [("", "cannot read: No such file or directory")]


def test_check_config_prints_every_error_with_its_location(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = MINIMAL.replace('host = "broker.local"', 'host = "broker.local"\nprot = 1884')
    text = text.replace('"plant-1"', '"plant#1"')
    path = write(folder, text)
    assert check_config_main(path) == 2
    out = capsys.readouterr()
    assert out.out == ""
    lines = out.err.splitlines()
    assert f"{path}: mqtt.prot: unknown key (did you mean 'port'?)" in lines
    assert any(line.startswith(f"{path}: station.site: ") for line in lines)
    assert len(lines) == 2


# --- secrets ---------------------------------------------------------------------------------


def test_password_from_a_file(folder: Path) -> None:
    (folder / "mqtt-password").write_text(PASSWORD + "\n")
    text = MINIMAL.replace(
        'host = "broker.local"',
        'host = "broker.local"\nusername = "top"\npassword_file = "mqtt-password"',
    )
    config = load_config(write(folder, text), environ={})
    assert config.mqtt.password is not None
    assert config.mqtt.password.get_secret_value() == PASSWORD
    assert config.mqtt.password_file is not None
    assert config.mqtt.password_file.path == folder / "mqtt-password"


def test_a_password_file_with_a_byte_order_mark(folder: Path) -> None:
    """The mark a Windows editor writes is not part of the password."""
    (folder / "mqtt-password").write_bytes(b"\xef\xbb\xbf" + PASSWORD.encode() + b"\r\n")
    text = MINIMAL.replace(
        'host = "broker.local"',
        'host = "broker.local"\nusername = "top"\npassword_file = "mqtt-password"',
    )
    config = load_config(write(folder, text), environ={})
    assert config.mqtt.password is not None
    assert config.mqtt.password.get_secret_value() == PASSWORD


def test_a_missing_password_file_is_an_error_naming_the_field(folder: Path) -> None:
    text = MINIMAL.replace(
        'host = "broker.local"',
        'host = "broker.local"\nusername = "top"\npassword_file = "/nonexistent/pw"',
    )
    errors = errors_of(write(folder, text))
    assert list(errors) == ["mqtt.password_file"]
    assert "/nonexistent/pw" in errors["mqtt.password_file"]


def test_password_from_a_systemd_credential(
    folder: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    credentials = tmp_path_factory.mktemp("credentials")
    (credentials / "mqtt-password").write_text(PASSWORD)
    text = MINIMAL.replace(
        'host = "broker.local"',
        'host = "broker.local"\nusername = "top"\npassword_credential = "mqtt-password"',
    )
    path = write(folder, text)
    config = load_config(path, environ={"CREDENTIALS_DIRECTORY": str(credentials)})
    assert config.mqtt.password is not None
    assert config.mqtt.password.get_secret_value() == PASSWORD
    assert config.mqtt.password_credential is not None
    assert config.mqtt.password_credential.name == "mqtt-password"

    errors = errors_of(path, environ={})  # not run by systemd
    assert "$CREDENTIALS_DIRECTORY is not set" in errors["mqtt.password_credential"]
    (credentials / "mqtt-password").write_text("")
    errors = errors_of(path, environ={"CREDENTIALS_DIRECTORY": str(credentials)})
    assert "empty" in errors["mqtt.password_credential"]


def test_a_password_written_in_the_config_is_refused_without_echoing_it(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = MINIMAL.replace(
        'host = "broker.local"', f'host = "broker.local"\npassword = "{PASSWORD}"'
    )
    path = write(folder, text)
    assert check_config_main(path) == 2
    err = capsys.readouterr().err
    assert "mqtt.password: unknown key; secrets are never written in the config" in err
    assert PASSWORD not in err


def test_the_password_never_shows_in_repr_dumps_or_logs(
    folder: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    (folder / "pw").write_text(PASSWORD)
    text = MINIMAL.replace(
        'host = "broker.local"', 'host = "broker.local"\nusername = "top"\npassword_file = "pw"'
    )
    path = write(folder, text)
    with caplog.at_level(logging.DEBUG):
        config = load_config(path, environ={})
        assert check_config_main(path) == 0
        logging.getLogger("test").info("config: %s / %r", config, config)
    assert config.mqtt.password is not None
    shown = [
        repr(config),
        str(config),
        repr(config.mqtt.password_file),
        config.model_dump_json(),
        str(config.model_dump()),
        caplog.text,
        capsys.readouterr().out,
    ]
    for text_shown in shown:
        assert PASSWORD not in text_shown


def _all_models(model: type[BaseModel]) -> set[type[BaseModel]]:
    found = {model}
    for field in model.model_fields.values():
        for sub in _models_in(field.annotation):
            found |= _all_models(sub)
    return found


def _models_in(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
