"""Datasets, samples, embeddings, model runs, versions, import and export."""
