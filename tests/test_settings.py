"""Settings come from one prefix per scope; typos are errors that name the key."""

import pytest

from prelabel.errors import ConfigError
from prelabel.settings import CoreSettings, check_environment, load_settings
from prelabel_textcls import TextClassifierBackend


def test_unknown_core_variable_is_named_with_a_suggestion():
    with pytest.raises(
        ConfigError, match=r"PRELABEL_MODEL_DIRR.*Did you mean PRELABEL_MODEL_DIR\?"
    ):
        check_environment({"PRELABEL_MODEL_DIRR": "/x"}, {})


def test_unknown_backend_variable_is_rejected_and_known_ones_pass():
    prefixes = {"PRELABEL_TEXTCLS_": TextClassifierBackend.Settings}
    check_environment(
        {"PRELABEL_TEXTCLS_THRESHOLD": "0.3", "PRELABEL_BACKEND": "textcls", "HOME": "/"}, prefixes
    )
    with pytest.raises(ConfigError, match="PRELABEL_TEXTCLS_TRESHOLD"):
        check_environment({"PRELABEL_TEXTCLS_TRESHOLD": "0.3"}, prefixes)


def test_other_installed_backends_variables_are_left_alone():
    check_environment({"PRELABEL_YOLO_MODEL": "x.pt"}, {}, ignore_prefixes=["PRELABEL_YOLO_"])


def test_backend_settings_from_env(monkeypatch):
    monkeypatch.setenv("PRELABEL_TEXTCLS_THRESHOLD", "0.25")
    assert TextClassifierBackend.load_settings().threshold == 0.25
    monkeypatch.setenv("PRELABEL_TEXTCLS_THRESHOLD", "2")
    with pytest.raises(ConfigError, match="PRELABEL_TEXTCLS_THRESHOLD"):
        TextClassifierBackend.load_settings()


def test_label_studio_names_and_allowlist(monkeypatch):
    monkeypatch.setenv("LABEL_STUDIO_URL", "http://ls.example:8080/")
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "secret-token")
    monkeypatch.setenv("PRELABEL_MEDIA_ALLOW_HOSTS", "cdn.example, *.bucket.example")
    settings = load_settings(CoreSettings)
    assert settings.label_studio_url == "http://ls.example:8080"
    assert settings.media_allow_hosts == ["cdn.example", "*.bucket.example"]
    assert "secret-token" not in repr(settings)


def test_label_studio_url_needs_a_scheme(monkeypatch):
    monkeypatch.setenv("LABEL_STUDIO_URL", "localhost:8080")
    with pytest.raises(ConfigError, match="http:// or https://"):
        load_settings(CoreSettings)
