import sys

from tools.gitlab_ci.runner import main

sys.exit(main())
