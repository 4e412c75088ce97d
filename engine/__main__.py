"""`engine` command line: `python -m engine` and the `engine` console script."""

from engine.cli import main

if __name__ == "__main__":
    main()
