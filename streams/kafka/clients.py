"""Client options for kafka-python and Faust, built once from the settings.

The embedded broker is always plain TCP on loopback, so security options apply only to a
configured cluster.
"""

from __future__ import annotations

import contextlib
import ssl
from typing import Any

import faust
from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from rules_store.errors import ServiceUnavailableError
from rules_store.settings import Endpoints, Settings


def _ssl_context(settings: Settings) -> ssl.SSLContext:
    context = ssl.create_default_context(
        cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
    )
    if settings.kafka_ssl_certfile:
        key_password = settings.kafka_ssl_key_password
        context.load_cert_chain(
            str(settings.kafka_ssl_certfile),
            str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None,
            key_password.get_secret_value() if key_password else None,
        )
    return context


def kafka_python_options(settings: Settings, endpoints: Endpoints) -> dict[str, Any]:
    """Keyword arguments shared by kafka-python's producer, consumer and admin client."""
    options: dict[str, Any] = {"bootstrap_servers": endpoints.kafka_bootstrap.split(",")}
    if endpoints.embedded_broker:
        return options
    options["security_protocol"] = settings.kafka_security_protocol
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = _ssl_context(settings)
    if settings.kafka_security_protocol.startswith("SASL_"):
        password = settings.kafka_sasl_password
        options.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=password.get_secret_value() if password else None,
        )
    return options


def faust_credentials(
    settings: Settings, endpoints: Endpoints
) -> faust.types.auth.CredentialsT | None:
    """Faust's `broker_credentials` for the configured security protocol (None for plain TCP)."""
    protocol = settings.kafka_security_protocol
    if endpoints.embedded_broker or protocol == "PLAINTEXT":
        return None
    context = _ssl_context(settings) if protocol in ("SSL", "SASL_SSL") else None
    if protocol == "SSL":
        assert context is not None  # noqa: S101 - narrowed by the branch above
        return faust.SSLCredentials(context)
    password = settings.kafka_sasl_password
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=password.get_secret_value() if password else None,
        ssl_context=context,
        mechanism=settings.kafka_sasl_mechanism,
    )


def open_admin(
    settings: Settings, endpoints: Endpoints, *, timeout_s: float = 10.0
) -> KafkaAdminClient:
    """An admin client, or a clear error naming the address when the broker does not answer."""
    try:
        return KafkaAdminClient(
            client_id="xsell-admin",
            request_timeout_ms=int(timeout_s * 1000),
            bootstrap_timeout_ms=int(timeout_s * 1000),
            **kafka_python_options(settings, endpoints),
        )
    except KafkaError as exc:
        msg = f"Kafka at {endpoints.kafka_bootstrap} does not answer: {exc}"
        raise ServiceUnavailableError(msg) from exc


def ensure_topics(
    settings: Settings, endpoints: Endpoints, names: tuple[str, ...], *, timeout_s: float = 10.0
) -> list[str]:
    """Create the missing topics with the configured partitions; return the names created.

    Creating them explicitly matters: a broker that auto-creates topics on first use picks
    its own partition count (4 on the embedded broker) and no configuration.
    """
    admin = open_admin(settings, endpoints, timeout_s=timeout_s)
    try:
        existing = set(admin.list_topics())
        missing = [name for name in names if name not in existing]
        if missing:
            new = [
                NewTopic(name, settings.topic_partitions, settings.topic_replication)
                for name in missing
            ]
            # Another worker may create them between our list and our create.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(new)
        return missing
    finally:
        admin.close()


def group_offsets(
    settings: Settings, endpoints: Endpoints, group: str, topic: str
) -> dict[int, int]:
    """The offsets `group` has committed on `topic`, by partition (none yet: empty)."""
    admin = open_admin(settings, endpoints)
    try:
        committed = admin.list_group_offsets({group: None}).get(group, {})
    finally:
        admin.close()
    return {tp.partition: meta.offset for tp, meta in committed.items() if tp.topic == topic}
