"""Model and config versions as data, broadcast on a compacted topic."""
