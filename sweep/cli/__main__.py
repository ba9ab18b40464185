"""``python -m sweep.cli``: the same console script as ``resnetx``."""

from sweep.cli.main import main

raise SystemExit(main())
