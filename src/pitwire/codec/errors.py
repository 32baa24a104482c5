"""The codec's one exception (re-exported by ``pitwire.codec.chunk``)::

    ValueError
     └── CodecError   a blob is malformed, or a batch cannot be encoded

Decoders raise it for anything wrong with their input (truncated, corrupt, unknown version)
and never let another exception out; encoders raise it for a batch they cannot represent.
"""

from __future__ import annotations


class CodecError(ValueError):
    """A blob is malformed (truncated, corrupt, unknown version) or a batch cannot be encoded."""
