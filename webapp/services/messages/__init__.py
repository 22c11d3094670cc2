"""Message templates: rendering (sandboxed Jinja) and their administration."""
