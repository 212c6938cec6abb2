"""Tamga's bottom layer: errors, settings, answer types, periods, scopes, formatting, SQL text.

Every other package may import this one; it imports none of them (see docs/architecture.md).
"""
