"""The front end process's life.

`preflight` refuses a bad set-up in one line before Ray starts; `runtime` starts
(and stops) the embedded Redis under its supervisor and a local Ray, or joins a
cluster; `raywatch` ends the process when its Ray cluster is gone for good; `loop`
is uvicorn's event loop, whose shutdown never waits on a thread stuck in Ray;
`workers` runs TICKETD_WORKERS front-end processes on one port and supervises them;
`http` is uvicorn's httptools protocol sending each response in one socket write.
"""
