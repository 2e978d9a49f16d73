"""``python -m livectx``: the same as the ``livectx`` command."""

from livectx.cli import main

main()
