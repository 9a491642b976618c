"""The instance's run slots: how many there are, how many runs hold one, how many wait for one.

The sensor spreads waiting documents over the free slots, and /metrics reports the same
figures, so both read them here."""

from dataclasses import dataclass

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

# A run holds a slot from the moment the coordinator dequeues it until it ends.
HOLDING = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]
WAITING = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED]


@dataclass(frozen=True)
class RunSlots:
    total: int
    in_use: int
    queued: int

    @property
    def free(self) -> int:
        """Slots no run holds or is queued for: a run asked for now would start at once."""
        return max(self.total - self.in_use - self.queued, 0)


def run_slots(instance: DagsterInstance, unlimited: int) -> RunSlots:
    """The instance's `max_concurrent_runs`; where it sets none (an instance without the
    queued run coordinator), `unlimited` stands for it: what the workers can execute at once."""
    config = instance.get_concurrency_config().run_queue_config
    limit = config.max_concurrent_runs if config is not None else -1
    return RunSlots(
        total=limit if limit >= 0 else unlimited,
        in_use=instance.get_runs_count(RunsFilter(statuses=HOLDING)),
        queued=instance.get_runs_count(RunsFilter(statuses=WAITING)),
    )
