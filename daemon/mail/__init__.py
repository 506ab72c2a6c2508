"""Mail: build messages (message.py), keep them in the outbox (outbox.py), deliver (smtp.py, files.py)."""
