"""Activation bookkeeping on a host: backups, the one-at-a-time lock, the activation log."""
