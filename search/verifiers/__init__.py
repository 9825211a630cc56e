"""Verifiers: this project's PRMs and ORMs (linear and likelihood heads) and public PRMs through adapters."""
