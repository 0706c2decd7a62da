"""Adapters: the only modules that reach third-party names outside a library's public API (underscore
modules, undocumented environment flags, logger names, private methods). Each module covers one library,
names the upstream issue or source line it depends on, and has a test in `tests/adapters/` that fails
loudly when the pinned version changes the behaviour relied on. Everything else imports public names only
(`lint-imports` keeps it so)."""
