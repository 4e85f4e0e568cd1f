"""The HTTP edge: the only package that imports FastAPI and Starlette.

``app.create_app`` builds the application; ``api/<domain>.py`` hold the routes, which only
call the domain services inside one transaction each (``Database.run`` for writes,
``Database.read`` for reads); ``errors.py`` turns every failure into one JSON shape and
``middleware.py`` guards the request size and hides unexpected errors.
"""
