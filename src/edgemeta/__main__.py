"""``python -m edgemeta`` is the ``edgemeta`` command."""

from edgemeta.cli import main

main()
