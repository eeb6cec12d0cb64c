"""``python -m lrcn`` runs the command-line interface."""

from lrcn.cli import main

main()
