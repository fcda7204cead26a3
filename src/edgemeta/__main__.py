"""``python -m edgemeta`` is the ``edgemeta`` command."""

from edgemeta.console import main

main()
