"""Dialogs: agent profiles, settings, call history."""
