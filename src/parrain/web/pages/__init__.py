"""Server-rendered pages (Jinja2): what people open in a browser."""
