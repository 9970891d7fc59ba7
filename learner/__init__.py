"""Learner: behavior records, MARO credit, TRL/PEFT updates, the local model and its server."""
