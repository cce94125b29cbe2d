"""The bundle: what training publishes (model), the input schema, their codecs and diffs."""
