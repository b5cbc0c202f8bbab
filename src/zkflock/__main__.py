from zkflock.cli import entry

entry()
