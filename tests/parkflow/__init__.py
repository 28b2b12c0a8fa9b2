"""Tests of the parkflow package, by module."""
