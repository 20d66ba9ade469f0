"""The frozen app's entry point: the same `main` as the `polyphone` command."""

import sys

from polyphone.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
