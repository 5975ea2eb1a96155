"""ticketd: loadgen's `waiting-room` scenario (issue 22).

A crowd queues for a sale: thousands join before it opens and more after, poll as advised and
book once admitted, beside a few bots that poll in a tight loop or book without queueing.
The audit (audit.py, pure) checks the queue was fair and tight: the pre-queue drawn at random
(Spearman's rho), later joiners in join order, one place and at most one booking per user, no
booking without an admission, bots no better off, and the sale sold exactly its seats; plus
loadgen's booking audit. Entry point: `run(WaitingConfig) -> WaitingReport` (runner.py); the
command line is `python -m loadgen --scenario waiting-room`.
"""
