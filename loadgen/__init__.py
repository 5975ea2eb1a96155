"""ticketd: loadgen."""
