"""Small helpers shared by every app; no models."""
