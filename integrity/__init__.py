"""sferum-audit integrity."""
