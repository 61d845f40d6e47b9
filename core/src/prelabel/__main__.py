"""``python -m prelabel``: the CLI."""

from prelabel.cli import main

main()
