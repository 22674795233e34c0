"""``python -m mlx_fused_init``: versions, a self-check and a speed check."""

import sys

from .selfcheck import main

sys.exit(main())
