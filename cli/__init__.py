"""The `tamga` command line (an edge of the application, like the web app)."""
