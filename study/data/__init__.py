"""CT data: HU handling, embedded phantoms, projection-domain low-dose simulation, prepared arrays."""
