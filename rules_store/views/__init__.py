"""Shapes of answers built from the pure core: predict, a customer's view, metrics."""
