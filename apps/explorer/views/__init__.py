"""Pages of the explorer, one module each: the table, the sample page, health and the map."""
