"""sferum-audit application."""
