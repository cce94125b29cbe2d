"""Offline training: load snapshots, segment customers, mine rules, fit models, publish bundles."""
