"""ticketd: server."""
