"""sferum-audit domain."""
