from __future__ import annotations

from pathlib import Path

import faust
import pytest

from rules_store.settings import Endpoints, Settings
from streams.kafka.app import create_app, declare_topic, group_timing
from streams.kafka.clients import faust_credentials, kafka_python_options
from streams.kafka.topics import TopicNames

EMBEDDED = Endpoints(
    "127.0.0.1:1", "redis://127.0.0.1:2/0", embedded_broker=True, embedded_redis=True
)
CLUSTER = Endpoints(
    "k1:9092,k2:9092", "redis://r:6379/0", embedded_broker=False, embedded_redis=False
)


def test_topic_names_follow_the_prefix_and_are_distinct() -> None:
    names = TopicNames("bank7").all()
    assert len(set(names)) == len(names) == 7
    assert all(name.startswith("bank7.") for name in names)
    assert TopicNames("bank7").dead_letters == "bank7.dead_letters"


def test_embedded_broker_gets_short_group_timing_with_heartbeat_a_third_of_session() -> None:
    timing = group_timing(EMBEDDED)
    assert timing["broker_session_timeout"] <= 4.0
    assert timing["broker_heartbeat_interval"] <= timing["broker_session_timeout"] / 3


def test_real_cluster_keeps_faust_default_group_timing(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    default = faust.App("reference").conf
    app = create_app(settings, CLUSTER, app_id="cluster-app")
    assert app.conf.broker_session_timeout == default.broker_session_timeout
    assert app.conf.broker_heartbeat_interval == default.broker_heartbeat_interval
    assert group_timing(CLUSTER) == {}


def test_app_uses_settings_for_broker_partitions_and_web(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, topic_partitions=7, web_port=7077)
    app = create_app(settings, EMBEDDED, app_id="embedded-app")
    assert [str(url) for url in app.conf.broker] == ["kafka://127.0.0.1:1"]
    assert app.conf.topic_partitions == 7
    assert app.conf.web_port == 7077
    assert app.conf.web_host == "127.0.0.1"
    assert app.conf.broker_session_timeout == group_timing(EMBEDDED)["broker_session_timeout"]
    assert Path(app.conf.datadir).parent.is_dir()


def test_declared_topics_carry_the_configured_partitions(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, topic_partitions=9)
    app = create_app(settings, EMBEDDED, app_id="declare-app")
    topic = declare_topic(app, "x.transactions", settings)
    assert topic.partitions == 9
    assert topic.get_topic_name() == "x.transactions"


def test_embedded_broker_ignores_configured_security() -> None:
    settings = Settings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username="u",
        kafka_sasl_password="p",  # type: ignore[arg-type]
    )
    assert kafka_python_options(settings, EMBEDDED) == {"bootstrap_servers": ["127.0.0.1:1"]}
    assert faust_credentials(settings, EMBEDDED) is None


def test_sasl_settings_reach_kafka_python_and_faust() -> None:
    settings = Settings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="SCRAM-SHA-256",
        kafka_sasl_username="engine",
        kafka_sasl_password="pw",  # type: ignore[arg-type]
    )
    options = kafka_python_options(settings, CLUSTER)
    assert options["bootstrap_servers"] == ["k1:9092", "k2:9092"]
    assert options["security_protocol"] == "SASL_PLAINTEXT"
    assert options["sasl_mechanism"] == "SCRAM-SHA-256"
    assert options["sasl_plain_password"] == "pw"
    credentials = faust_credentials(settings, CLUSTER)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.mechanism.value == "SCRAM-SHA-256"
    assert "pw" not in repr(credentials)


@pytest.mark.parametrize("protocol", ["SSL", "SASL_SSL"])
def test_tls_protocols_build_an_ssl_context(protocol: str) -> None:
    extra = (
        {"kafka_sasl_mechanism": "PLAIN", "kafka_sasl_username": "u", "kafka_sasl_password": "p"}
        if protocol == "SASL_SSL"
        else {}
    )
    settings = Settings(kafka_security_protocol=protocol, **extra)  # type: ignore[arg-type]
    options = kafka_python_options(settings, CLUSTER)
    assert options["ssl_context"] is not None
    assert faust_credentials(settings, CLUSTER) is not None


def test_faust_s_worker_consumer_gets_the_configured_fetch_wait_not_its_fixed_1500_ms(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from types import SimpleNamespace

    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    from streams.compat import tansu

    tansu.install_fetch_wait(35)
    made_by_faust = SimpleNamespace(_fetch_max_wait_ms=1500)
    monkeypatch.setattr(tansu, "_original_create_worker_consumer", lambda *_: made_by_faust)
    created = AIOKafkaConsumerThread._create_worker_consumer(object(), None)  # type: ignore[arg-type]
    assert created is made_by_faust
    assert created._fetch_max_wait_ms == 35


def test_tables_are_in_rocksdb_in_a_worker_dir_by_default_and_in_memory_on_request(
    tmp_path: Path,
) -> None:
    rocks = create_app(Settings(state_dir=tmp_path), CLUSTER, app_id="rocks-app")
    assert rocks.conf.store.scheme == "rocksdb"
    assert Path(rocks.conf.tabledir) == tmp_path / "tables" / "rocks-app" / "worker-0"
    memory = create_app(Settings(state_dir=tmp_path, table_store="memory"), CLUSTER, app_id="m")
    assert memory.conf.store.scheme == "memory"
    assert not (tmp_path / "tables" / "m").exists()


def test_each_table_partition_has_one_standby_by_default_and_none_on_request(
    tmp_path: Path,
) -> None:
    kept = create_app(Settings(state_dir=tmp_path), CLUSTER, app_id="kept")
    assert kept.conf.table_standby_replicas == 1
    bare = create_app(Settings(state_dir=tmp_path, standby_replicas=0), CLUSTER, app_id="bare")
    assert bare.conf.table_standby_replicas == 0
