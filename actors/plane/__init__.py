"""The data plane: commands travel to a route actor over a socket the actor serves itself.

Ray stays the control plane (naming, activation, placement, restarts); this is the
request path. `protocol` is the wire format and the mutual HMAC handshake, shared
by both ends; `listener` is the actor's side (TCP on its node, plus an abstract Unix
socket on Linux). The front end's side is server/dispatch/link.py.
"""
