"""runtimes stage."""
