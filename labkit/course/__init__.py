"""The course: exercise.toml (catalog), course.toml and visibility (course), a student's workspace."""
