"""The server: FastAPI app, ingest, live fan-out (hub), persistence and REST."""
