"""pitwire: real-time motorsport telemetry.

Capture a car's data, move it to a server, fan it out live to browser dashboards, store it
compactly and analyse it. See README.md for the two commands that run it.
"""

__version__ = "0.1.0"
