"""Online half of the engine: the Faust app, its topics and agents."""
