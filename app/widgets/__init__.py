"""Reusable widgets: plots, image views and small controls that render core values."""
