"""Writes of production monitoring: `production` appends production samples, `drift` keeps the
project's thresholds and checks the time windows."""
