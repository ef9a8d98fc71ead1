"""`python -m borderledger`."""

from borderledger.entry import main

main()
