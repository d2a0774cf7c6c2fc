"""User commands that are not part of a pipeline (data set generation/import)."""
