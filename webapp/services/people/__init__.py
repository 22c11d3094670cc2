"""People: customers, users, their phone numbers and their notification preferences (the write paths)."""
