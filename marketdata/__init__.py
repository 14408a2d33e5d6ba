"""Market data: depth with update ids, public trades, K-lines and the 24 h ticker, built from the event stream."""
