"""Reference AI engine simulator: simulated models, ensemble voting and telemetry publishing.

Run it with ``python3 -m ai_engine`` (see README.md for the environment it reads).
"""

__version__ = "1.0.0"
