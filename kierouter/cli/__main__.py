import sys

from kierouter.cli import main

sys.exit(main())
