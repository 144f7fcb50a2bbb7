import sys

from server.trust.command import main

if __name__ == "__main__":
    sys.exit(main())
