"""The ``fastevals`` command line: ``main`` (the parser, output helpers, error contract) and one module per command.

``fastevals/cli.py`` is the entry point and re-exports ``main`` and the helpers.
"""
