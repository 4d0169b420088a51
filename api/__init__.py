"""HTTP edge of dsar: settings, the Starlette app, authentication and the command line."""
