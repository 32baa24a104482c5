"""``python -m pitwire``: the CLI."""

from pitwire.cli import app

app()
