"""Pages of the web gallery, one module per area; config/urls.py maps them."""
