"""``python -m odernn_lite`` runs the ``odernn-lite`` command line."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
