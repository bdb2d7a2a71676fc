"""``python -m devtools.coresim``: run the Core stand-in in the foreground."""

from devtools.coresim.simulator import main

if __name__ == "__main__":
    main()
