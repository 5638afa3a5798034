"""Signals the registry sends inside the transaction of a change (stac_publish records them in its outbox)."""

from django.dispatch import Signal

# action: "create" (new version), "put" (its state changed) or "delete" (gone, or its id changes);
# model_version_ids: the versions concerned. Sent before the change for deletes, so receivers can still read them.
model_versions_changed = Signal()
