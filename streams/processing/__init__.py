"""The per-batch logic (in-process testable) and its commit ordering."""
