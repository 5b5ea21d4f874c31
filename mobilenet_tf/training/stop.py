"""How a command asks a running training to stop (SIGINT / SIGTERM): pure Python."""

__all__ = ["StopRequest"]


class StopRequest:
    """How a command asks a running ``training.train`` to stop (SIGINT / SIGTERM).

    The signal handler calls :meth:`request` while ``active`` (training has started);
    ``train`` then saves a checkpoint at the step in progress and raises
    ``errors.Interrupted``. Before training starts there is nothing to save: the handler
    raises ``Interrupted`` itself.
    """

    def __init__(self):
        self.signum = None
        self.active = False

    def request(self, signum):
        self.signum = signum
