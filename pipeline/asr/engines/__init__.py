"""The speech engines, each a ``driver.WindowEngine`` over its own model runtime."""
