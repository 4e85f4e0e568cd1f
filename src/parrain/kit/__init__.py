"""Small building blocks every domain uses: money, ids, the clock.

Nothing here imports another part of parrain except :mod:`parrain.errors`.
"""
