"""Rules: saved queries that act on what scoring finds, after each run or on a schedule."""
