"""``python -m autoloss_zero`` is the ``autoloss-zero`` command."""

from .cli import main

if __name__ == "__main__":
    main()
