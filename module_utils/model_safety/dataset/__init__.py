"""The PatchTST sequence dataset: training windows from OHLCV history (not deployment safety)."""
