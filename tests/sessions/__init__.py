"""The sample sessions shown in the chapters: captured from the real programs (capture.py)."""
