"""One connection's life, below the providers and above the protocols.

The session package owns everything between a provider's description (URL, auth,
protocol, capabilities) and the socket:

* :mod:`~voxengine.session.driver` — :class:`RealtimeSession`, the loop that drives one
  sans-I/O protocol over one transport connection (its frame handling in
  :mod:`~voxengine.session.wire`), with :mod:`~voxengine.session.tracker`
  (:class:`ResponseTracker`, the response lifecycle) and
  :mod:`~voxengine.session.failures` (what is retried, how failures are typed);
* :mod:`~voxengine.session.relay` — commands down to the current connection (or
  queued), events up from it;
* :mod:`~voxengine.session.link` — :class:`~voxengine.session.link.SessionLink`, which
  keeps one conversation alive across connections (reconnect, restore), with
  :mod:`~voxengine.session.watchdog` (stalls) and :mod:`~voxengine.session.ledger`
  remembering the input the service has not confirmed;
* :mod:`~voxengine.session.queue` — the one bounded event queue towards the application;
* :mod:`~voxengine.session.history` — the one conversation history (other holders are
  views of it).

It imports protocols, transport, events, commands, config and errors; never providers,
strategies or the engine (import-linter checks it).
"""

from voxengine.session.driver import RealtimeSession
from voxengine.session.failures import is_retryable
from voxengine.session.tracker import ResponseTracker

__all__ = ["RealtimeSession", "ResponseTracker", "is_retryable"]
