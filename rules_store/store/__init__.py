"""Where bundles live: Redis (keys, store, watcher) and local files."""
