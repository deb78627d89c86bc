"""The one small interface every search backend implements."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from ..study import Session


class Backend:
    """Runs the trials of a study until ``session.should_stop()``.

    The backend samples each trial's configuration with ``session.space``, runs
    it (``session.run`` or its own workers), records the outcome in the study
    storage, and calls ``session.trial_ended`` so the leaderboard and the best
    model stay current.
    """

    name: ClassVar[str] = ""
    #: whether trials run on autoft's own trial workers (Session.workers)
    uses_workers: ClassVar[bool] = True

    def optimize(self, session: Session) -> None:
        raise NotImplementedError
