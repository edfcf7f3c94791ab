"""``python -m callflow``: the ``callflow`` command (see :mod:`callflow._cli`)."""

from ._cli import main

raise SystemExit(main())
