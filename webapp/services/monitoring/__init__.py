"""Watching what customers run: heartbeats (check-ins that must keep coming)."""
