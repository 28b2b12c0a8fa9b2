"""Tests of the ingest package, by module."""
