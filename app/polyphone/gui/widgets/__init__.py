"""Widgets of the main window. They listen to the bridge's signals (wired in main_window)
and emit their own; none of them imports asyncio or the engine's call."""
