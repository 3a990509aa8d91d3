"""Committee review screens (not built yet)."""
from flask import Blueprint

bp = Blueprint("review", __name__)
