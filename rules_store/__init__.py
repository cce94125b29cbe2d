"""What training publishes and streams consume: shared pure logic, the bundle, the Redis store."""
