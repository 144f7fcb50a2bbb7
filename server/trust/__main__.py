import sys

from server.store.trust import main

if __name__ == "__main__":
    sys.exit(main())
