"""Signals other apps listen to, so this app never imports the ones above it.

`records_ready` is sent once the records' pixels are committed (kwargs: image_ids); search
embeds them (search/receivers.py).
"""

from django.dispatch import Signal

records_ready = Signal()
