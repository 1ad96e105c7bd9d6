from wheelhouse.cli import main

main()
