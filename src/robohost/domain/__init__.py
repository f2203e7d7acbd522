"""The pure domain core: market data, orders, fills, portfolio, fill model and risk.

Standard library only: nothing here does I/O, reads a clock or imports a framework.
"""
