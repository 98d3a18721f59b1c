"""Embedding, the Chroma vector store, user profiles and constrained candidate retrieval."""
