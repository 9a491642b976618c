"""Where artifacts live: the data dir's layout, the catalog, backup and cleanup."""
