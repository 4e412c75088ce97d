"""Coverage-guided fuzzing (atheris) of every parser an attacker or a careless user can reach.

One module per target, `fuzz/run.py` to run them; see RELIABILITY.md."""
