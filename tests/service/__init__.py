"""Tests of the service package, by module."""
