"""sferum-audit projections."""
