"""``resnetx`` with the stand-in trainable registered (``--trainable synthetic``), for subprocess tests."""

from sweep.cli.main import main
from tests.support import register_standin

if __name__ == "__main__":
    register_standin()
    raise SystemExit(main())
