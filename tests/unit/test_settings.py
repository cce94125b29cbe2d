from __future__ import annotations

from pathlib import Path

import pytest

from rules_store.errors import ConfigError
from rules_store.settings import Settings, load_settings


def test_unset_addresses_mean_embedded_services() -> None:
    settings = load_settings()
    assert settings.kafka_brokers is None
    assert settings.redis_url is None
    assert settings.web_host == "127.0.0.1"  # loopback unless configured otherwise


def test_settings_are_read_from_xsell_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XSELL_KAFKA_BROKERS", "k1:9092, k2:9093")
    monkeypatch.setenv("XSELL_REDIS_URL", "rediss://cache:6380/2")
    monkeypatch.setenv("XSELL_TOPIC_PARTITIONS", "12")
    settings = load_settings()
    assert settings.kafka_brokers == "k1:9092, k2:9093"
    assert settings.redis_url == "rediss://cache:6380/2"
    assert settings.topic_partitions == 12
    assert settings.run_file == Path(settings.state_dir) / "embedded.json"


def test_secrets_never_appear_in_repr_or_dump(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XSELL_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("XSELL_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("XSELL_KAFKA_SASL_USERNAME", "engine")
    monkeypatch.setenv("XSELL_KAFKA_SASL_PASSWORD", "kafka-s3cret")
    monkeypatch.setenv("XSELL_REDIS_PASSWORD", "redis-s3cret")
    settings = load_settings()
    for text in (repr(settings), str(settings), settings.model_dump_json()):
        assert "kafka-s3cret" not in text
        assert "redis-s3cret" not in text
    assert settings.kafka_sasl_password is not None
    assert settings.kafka_sasl_password.get_secret_value() == "kafka-s3cret"


def test_sasl_without_credentials_names_the_missing_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XSELL_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("XSELL_KAFKA_SASL_USERNAME", "engine")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "XSELL_KAFKA_SASL_MECHANISM" in message
    assert "XSELL_KAFKA_SASL_PASSWORD" in message
    assert "XSELL_KAFKA_SASL_USERNAME" not in message


def test_password_inside_redis_url_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XSELL_REDIS_URL", "redis://:hunter2@cache:6379/0")
    with pytest.raises(ConfigError, match=r"XSELL_REDIS_URL.*XSELL_REDIS_PASSWORD") as caught:
        load_settings()
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("XSELL_KAFKA_BROKERS", "kafka-without-port"),
        ("XSELL_TOPIC_PARTITIONS", "0"),
        ("XSELL_TOPIC_PREFIX", "bad prefix"),
        ("XSELL_REDIS_URL", "http://cache:6379"),
        ("XSELL_KAFKA_SECURITY_PROTOCOL", "TLS"),
    ],
)
def test_invalid_values_are_reported_with_the_variable_name(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        load_settings()


def test_config_error_is_also_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)
    with pytest.raises(ValueError, match="partitions"):
        Settings(topic_partitions=-1)


def test_empty_variables_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XSELL_STATE_DIR", "")
    monkeypatch.setenv("XSELL_KAFKA_BROKERS", "")
    settings = load_settings()
    assert settings.kafka_brokers is None
    assert settings.state_dir.name == "xsell"
