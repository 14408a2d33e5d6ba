"""xinfinity: a deterministic crypto spot exchange core."""
