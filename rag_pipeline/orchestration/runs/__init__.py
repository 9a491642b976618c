"""Runs: asked for from the API and CLI, their slots, backfills, what a step knows of its own run,
and the projection reconciled with the instance."""
