"""The core data model: channels, columnar frame batches, manifests and session records.

Pure: nothing in here does I/O or imports an adapter.
"""
