"""Agreement screens (not built yet)."""
from flask import Blueprint

bp = Blueprint("agreements", __name__)
