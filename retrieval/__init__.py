"""Tamga: retrieval package."""
