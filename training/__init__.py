"""avsepd training utilities (CPU-side: data prep, fixtures, demo)."""
