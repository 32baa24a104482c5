"""Manifests shipped with pitwire, one ``{name}.toml`` per source (see ``load_builtin``)."""
