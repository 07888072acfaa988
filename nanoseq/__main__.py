"""``python -m nanoseq`` runs the CLI."""

from nanoseq.cli import main

main(prog_name="nanoseq")
