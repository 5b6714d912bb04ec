"""Allow `python -m lmtune`."""

from lmtune.cli import main

main()
