"""Analysis: laps, sectors, deltas (pure numpy). The same code runs live and on replay."""
