"""The web process: the Flask app and its OpenAPI document, the WSGI application gunicorn serves and
gunicorn's settings."""
