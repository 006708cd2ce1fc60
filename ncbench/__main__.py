"""`python -m ncbench` is the `ncbench` command."""

from .cli import main

main()
