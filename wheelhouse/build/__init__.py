"""build: one BuildSession per run; plan -> fetch -> compile -> assemble -> record."""
