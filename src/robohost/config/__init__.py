"""Configuration: typed, frozen pydantic models and the loader of a robot home."""
