"""Activity ledger screens (not built yet)."""
from flask import Blueprint

bp = Blueprint("activities", __name__)
