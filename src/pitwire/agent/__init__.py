"""The agent: runs a source, numbers and batches frames, and streams them to a server."""
