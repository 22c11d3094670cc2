"""Read-side summaries for the pages: dashboard queries, the inbox, the queue and worker status."""
