"""Sub-commands of the ``resnetx`` console script (registered in ``sweep.cli.COMMANDS``)."""
