"""Test doubles for the ticketd HTTP contract."""
