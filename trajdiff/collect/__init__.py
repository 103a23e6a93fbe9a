"""Behaviour-policy training (stable-baselines3 SAC) and D4RL-protocol dataset generation."""
