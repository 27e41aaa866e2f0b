"""Grading one file: which checks run (plan), running them (engine), results and their renderers."""
