"""What the commands share (argument parsing, signals, exit status). Commands only: the
library never imports this package."""
