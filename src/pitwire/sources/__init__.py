"""Frame sources: the Source protocol, a registry, and one module per game or feed."""
