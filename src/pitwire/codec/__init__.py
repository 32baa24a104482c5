"""Storage chunk codec (shared by the store and, later, session files)."""
