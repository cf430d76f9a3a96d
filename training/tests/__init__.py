"""Tests for the training/ tooling."""
