"""Hook points other capabilities subscribe to.

``ref_updated`` is sent after every accepted ref update, with keyword arguments
``document``, ``actor`` (a User or None), ``ref``, ``old``, ``new`` (OIDs; all zeros for
a creation or deletion) and ``source`` (``'push'``, ``'web'`` or ``'api'``). Live rooms
merge the change and merge requests refresh from here; receivers must not raise.
"""

from __future__ import annotations

from blinker import Namespace

signals = Namespace()
ref_updated = signals.signal("ref-updated")
