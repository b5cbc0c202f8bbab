from zkflock.cli import main

main(prog_name="zkflock")
