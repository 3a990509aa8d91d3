"""Report screens (not built yet)."""
from flask import Blueprint

bp = Blueprint("reports", __name__)
