"""Notification screens (not built yet)."""
from flask import Blueprint

bp = Blueprint("reminders", __name__)
