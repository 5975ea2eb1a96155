"""Reads that wake no route actor: the search read model.

`timetable` indexes a date's routes by station; `finder` answers "which trains from
A to B on D, with seats" from this front end's snapshots or the availability each
actor stores in Redis, remembering answers within the refresh interval.
"""
