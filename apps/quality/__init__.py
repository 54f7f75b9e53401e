"""Scoring runs: the quality engine's results per dataset version, and starting and reading them."""
