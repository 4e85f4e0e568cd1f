"""Operators: the people of the growth, fraud, finance and privacy teams who use the console.

An admin creates the first account with ``parrain operator create``. Each operator has one
role (:mod:`.roles` says what each role may do). Passwords are kept only as argon2id hashes;
a sign-in that fails too often in a row locks the account for a while. A sign-in opens a
server-side session: the browser holds a random token in a cookie, the database only its
SHA-256, so signing out, an idle timeout, an expiry or a disabled account ends it at once.
Sign-ins, failed sign-ins, lockouts and sign-outs are written to the audit chain, never a
password. See docs/adr/0020-operator-sign-in-and-roles.md.
"""
