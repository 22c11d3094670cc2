"""Routing: who hears about an event, on which channel and when — preferences turned into rules, the decisions
recorded as Notification rows (sent or not, with the reason), holds and digests, outgoing webhook fan-out, and the
dry run (preview)."""
