"""The local lab: systemd-nspawn hosts that stand in for production engine hosts."""
