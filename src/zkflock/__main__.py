from zkflock._cli.fast import entry

entry()
