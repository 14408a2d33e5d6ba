"""The Binance-compatible REST API (spec/API.md section 2), mounted under /api/v3: gateway/binance/app.py."""
