from wheelhouse.cli import run

run()
