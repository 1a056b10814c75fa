"""File-level I/O with no model imports: atomic writes, the output-path guard, safe checkpoint
reading and the run-folder lock. Torch is imported only inside the functions that need it."""
