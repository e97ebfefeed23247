"""sferum-audit consumers."""
