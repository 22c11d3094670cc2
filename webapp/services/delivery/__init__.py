"""Delivery: sending a claimed Notification through its channel, recording the outcome, retrying, recovering
what the queue lost; test sends; the delivery log."""
