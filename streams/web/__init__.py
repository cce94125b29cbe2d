"""The worker's REST API, live alert feed, health and dashboard."""
