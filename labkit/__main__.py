"""Allow `python -m labkit`."""

from labkit.cli.main import main

if __name__ == "__main__":
    main()
