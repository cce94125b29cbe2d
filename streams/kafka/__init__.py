"""Faust app and topics, kafka-python clients, dead letters, the changelog reader."""
