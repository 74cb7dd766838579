"""Helpers the tests share: fixtures' building blocks, fakes, and the processes some tests run."""
