"""The engine on a host: its status, its expected configuration, its env file and weights, its
stop + start, and the proof of a model's role."""
