"""ticketd: actors."""
