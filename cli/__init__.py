"""sferum-audit cli."""
