"""The linkage index and the once-only lookup service built on it."""
