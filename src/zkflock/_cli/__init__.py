"""The command's subcommands, thin over the library (entry point: zkflock.cli)."""
