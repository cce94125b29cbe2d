"""Rankers trained from a retail snapshot, their offline evaluation and the choice of one."""
