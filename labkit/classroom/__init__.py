"""A whole class: intake of submissions, batch grading, roster, summary and Gradescope."""
