"""JSON API (not built yet)."""
from flask import Blueprint

bp = Blueprint("api", __name__)
