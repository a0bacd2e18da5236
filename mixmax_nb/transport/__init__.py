"""Transports: the one I/O seam (see ``base``). ``cli`` runs the real `membrane` binary."""
