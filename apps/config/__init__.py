"""Settings, URLs and the embedded defaults that let Loupe run on one machine with no setup."""
