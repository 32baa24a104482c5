"""Simulation: track geometry and simulated cars (pure numpy)."""
