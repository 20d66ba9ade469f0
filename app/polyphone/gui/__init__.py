"""The desktop app: PySide6 + qasync. The only package that imports Qt.

`app.main(argv)` is the entry point; `bridge.EngineBridge` is the one object
between the engine (asyncio) and the widgets (Qt signals).
"""
