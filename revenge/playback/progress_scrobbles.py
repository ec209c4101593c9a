"""The progress → scrobble hook: a track listen that crosses its play threshold in the progress rules
is also recorded as a scrobble (``ProgressService`` calls this after the update's batch is applied)."""

from __future__ import annotations

from collections.abc import Sequence

from revenge.playback.records import RecordStore
from revenge.playback.scrobbles import counted_play, scrobble_for_play
from revenge.progress.model import DEFAULT_POLICIES, Policies, ProgressState, ProgressUpdate


class ProgressScrobbler:
    """``revenge.progress.service.PlayRecorder`` writing to the records store."""

    def __init__(self, records: RecordStore, policies: Policies = DEFAULT_POLICIES) -> None:
        self._records = records
        self._policies = policies

    def counted_play(self, update: ProgressUpdate, state: ProgressState) -> bool:
        return counted_play(update, state, self._policies[state.item_type])

    async def record_plays(self, plays: Sequence[tuple[ProgressUpdate, ProgressState]]) -> None:
        """One scrobble per play, in one store call; raises ``StoreUnavailable`` when it cannot."""
        await self._records.add_scrobbles([scrobble_for_play(update, state) for update, state in plays])
