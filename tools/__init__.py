"""Tamga: tools package."""
