"""Connections to other systems: SMTP configs, outgoing webhook endpoints, incoming webhook sources, API keys."""
