"""``python -m unirun``."""

from unirun._cli import main

raise SystemExit(main())
