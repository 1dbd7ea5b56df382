"""A package that declares nothing."""
