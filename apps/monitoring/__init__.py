"""Production monitoring: production samples, drift windows and checks, policies, the drift page."""
