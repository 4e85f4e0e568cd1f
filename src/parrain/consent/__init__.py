"""Consent: each campaign's data-use declaration (versioned, fideslang keys), the policy that
decides whether it may launch (``policy.py``, pure), and the plain-language notices (EN/FR)
rendered from each version, content-hashed and kept."""
