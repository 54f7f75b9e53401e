"""The audit log: who changed roles, exported, deleted, or changed automation, and when."""
