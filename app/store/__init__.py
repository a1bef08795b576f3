"""What the assistant remembers about its use: the query log, feedback and the review queue."""
