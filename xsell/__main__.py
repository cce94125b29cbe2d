"""`python -m xsell`: the same as the `xsell` command."""

from xsell.cli import main

main()
