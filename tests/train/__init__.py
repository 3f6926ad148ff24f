"""Tests of avlab.train (a package, so its conftest has a unique module name under --doctest-modules)."""
