"""Database plumbing: declarative base, types, the unit of work and the migrations."""
