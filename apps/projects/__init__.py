"""Projects, memberships, the role → capability table and the one access layer."""
