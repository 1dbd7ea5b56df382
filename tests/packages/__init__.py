"""Task packages for tests: one per way a package can be wrong, and one that is right."""
