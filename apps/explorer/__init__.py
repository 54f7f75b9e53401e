"""The explorer: the query language, the sample table, the sample page, health, the map, saved views and bulk actions."""
