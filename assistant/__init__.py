"""Tamga: assistant package."""
