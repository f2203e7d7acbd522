"""Example robots that ``robohost init --example NAME`` copies into a new home."""
