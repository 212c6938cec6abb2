"""Tamga: tradedata package."""
