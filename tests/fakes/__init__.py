"""Fakes of outside services for tests: protocol-faithful servers on 127.0.0.1."""
