"""What operators run: the ``pdp`` command and the admin console. Commands load the code
location only when they run it, so ``pdp --help`` and file commands start fast."""
