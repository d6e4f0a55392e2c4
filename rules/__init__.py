"""The detection and policy engine: pure functions over text and a sender context."""
