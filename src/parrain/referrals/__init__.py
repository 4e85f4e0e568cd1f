"""Referrals: a member's sponsorship code, its link, and which code earns a friend's step.

Data flow: at enrolment a member gets a code from :func:`~parrain.referrals.codes.new_code`
(stored in canonical form under a UNIQUE constraint; a clash draws again) and shares
:func:`~parrain.referrals.codes.link_for`. A click on the link, or a code a friend types, is
read with :func:`~parrain.referrals.codes.parse_code`, which refuses typos before any lookup.
Clicks are recorded as :class:`~parrain.referrals.attribution.Touch` values; when the friend
installs and signs up, the :class:`~parrain.referrals.attribution.Conversion` and the touches
that might count go to :func:`~parrain.referrals.attribution.attribute` with the campaign's
:class:`~parrain.referrals.attribution.AttributionRule`, which names the code to credit and
why. ``codes.py`` and ``attribution.py`` are pure and need no database to test.

Imports: :mod:`parrain.kit` and :mod:`parrain.errors` only.
"""
