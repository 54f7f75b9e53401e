"""Users, login and personal API tokens."""
