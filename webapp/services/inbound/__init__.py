"""What comes back from outside: acknowledgements (ACK by SMS or page) and SMS replies (STOP/START/HELP)."""
