"""Helpers shared by the three services: logging, metrics, HTTP, config and lifecycle."""
