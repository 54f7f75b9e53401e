"""The quality engine: pure NumPy / scikit-learn kernels with no Django imports."""
