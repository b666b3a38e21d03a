"""Helpers the tests share: a real HTTP ticket system on loopback, and stored tickets to send to it."""
