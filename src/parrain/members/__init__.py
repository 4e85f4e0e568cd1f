"""Members: the people who refer friends, known everywhere else only by a pseudonymous id.

Their personal data (marketplace user id, email, username, profile photo reference, PayPal
receiver) is stored encrypted under a per-member data key and found by keyed lookup hashes;
see :mod:`parrain.members.service` and docs/adr/0005-personal-data-encryption.md.
"""
