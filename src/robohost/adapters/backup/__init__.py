"""Backups: database snapshots (``snapshot``), the encrypted archive format (``archive``) and the places
archives are kept (``targets``). The services in ``robohost.services.backup`` put them together."""
