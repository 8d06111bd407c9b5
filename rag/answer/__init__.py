"""Answer: the answer stages (prompt, generation, support check, shaping) and citations checked
at character offsets of the source. Imports search, store, models and text."""
