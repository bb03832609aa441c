"""Personal data: who received or sent what about a person (disclosure accounting)."""
