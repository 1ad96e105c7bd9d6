"""lock: inputs -> resolver -> hashes -> locks/<target>.txt."""
