"""docker-compose.yml cannot run here (no Docker engine): pin its wiring by parsing it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_compose_has_kafka_redis_trainer_and_worker(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"kafka", "redis", "trainer", "worker"}


def test_kafka_runs_single_node_kraft_without_auto_created_topics(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert "INTERNAL://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "healthcheck" in kafka


def test_redis_is_7_with_aof_and_a_password_from_the_environment(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    assert re.match(r"redis:7(\.|-|$)", redis["image"])
    command = " ".join(redis["command"])
    assert "--appendonly yes" in command
    assert "--requirepass" in command
    assert ":?" in redis["environment"]["REDIS_PASSWORD"]  # no default: compose refuses to start
    assert "healthcheck" in redis


def test_trainer_and_worker_share_the_image_and_the_xsell_variables(
    compose: dict[str, Any],
) -> None:
    trainer, worker = compose["services"]["trainer"], compose["services"]["worker"]
    assert trainer["build"] == "."
    assert worker["image"] == trainer["image"]
    assert worker["environment"] == trainer["environment"]
    env = worker["environment"]
    assert env["XSELL_KAFKA_BROKERS"] == "kafka:9092"
    assert env["XSELL_REDIS_URL"] == "redis://redis:6379/0"
    assert all(name.startswith("XSELL_") for name in env)


def test_secrets_have_no_default_anywhere(compose: dict[str, Any]) -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    for match in re.finditer(r"\$\{(\w*PASSWORD\w*)([^}]*)\}", text):
        assert match.group(2).startswith(":?"), f"{match.group(1)} must be required, not defaulted"


def test_workers_can_scale_and_wait_for_healthy_services(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    assert "container_name" not in worker  # a fixed name would break --scale
    assert "ports" not in worker  # replicas would fight over a host port
    deps = worker["depends_on"]
    assert deps["kafka"]["condition"] == "service_healthy"
    assert deps["redis"]["condition"] == "service_healthy"
    assert deps["trainer"]["condition"] == "service_completed_successfully"


def test_published_ports_bind_to_loopback_only(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_service_commands_exist_in_the_cli(compose: dict[str, Any]) -> None:
    from xsell.cli import cli

    for name in ("trainer", "worker"):
        command = compose["services"][name]["command"][0]
        assert command in cli.commands, f"{name} runs `xsell {command}`, which does not exist"


def test_dockerfile_installs_the_package_and_runs_xsell_unprivileged() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "pip install ." in text
    assert re.search(r"^USER\s+xsell", text, re.MULTILINE)
    assert 'ENTRYPOINT ["xsell"]' in text
    for package in ("rules_store", "streams", "training", "xsell"):
        assert f"COPY {package} " in text
