"""Sub-commands of pneumoscan-cli, one module each."""
