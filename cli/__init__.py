"""The ``tricodec`` command line (typer)."""
