"""Where dumps come from: files and directories (files.py)."""
