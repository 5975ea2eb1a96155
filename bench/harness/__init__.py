"""The benchmark harness: what bench/throughput.py and bench/search_bench.py share.

- `paths`: the repo, the wrk scripts, docs/benchmarks.md;
- `cpu`: CPU seconds of a server's process tree by part (and its front-end workers);
- `servers`: a server under test as its own process on loopback;
- `workload`: the routes booked, the Lua baseline's config, wrk runs and results;
- `scenarios`: the durable-booking scenarios, one server at a time, and what all share;
- `sellout`, `hotroute`: the sellout (audited) and hot-route scenarios;
- `profile`: py-spy of ticketd under the durable load;
- `report`, `tables`, `targets`: machine and source, the tables, the target lines, and
  the docs section they go to;
- `plane`: blocking calls to one route actor over its data plane (bench/recovery_bench.py).
"""

import sys
from pathlib import Path

# the checkout's packages (server.api.auth mints the tokens), even without the editable install
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
