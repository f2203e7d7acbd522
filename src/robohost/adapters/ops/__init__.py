"""Adapters to the operating system and its service manager."""
