"""Nothing here implements `lost`."""
