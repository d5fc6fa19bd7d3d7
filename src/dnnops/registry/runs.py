"""Training runs in the metadata store: the recorder the loop reports to, and queries."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from dnnops.errors import RunNotFound
from dnnops.registry.clock import Clock, iso_utc, utc_now
from dnnops.registry.tables import CheckpointRow, EpochRow, RunRow

if TYPE_CHECKING:  # a name only: the server reads runs' rows, never training's code
    from dnnops.train.recorder import RunStatus


@dataclass(frozen=True)
class RunRecord:
    id: str
    project: str
    status: str
    created_at: str
    updated_at: str
    ended_at: str | None
    params: dict[str, Any]
    metrics: dict[str, Any]
    dataset_sha256: str
    weights_sha256: str | None
    run_dir: str
    world_size: int
    error: str | None
    epochs: list[dict[str, float]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Runs(Protocol):
    """Runs as training records them and commands read them: the database's
    (``RunStore``) or a server's (``RemoteRuns``, ``DNNOPS_SERVER_URL``)."""

    def create(
        self,
        run_id: str,
        project: str,
        params: dict[str, Any],
        *,
        dataset_sha256: str,
        run_dir: Path,
        world_size: int = 1,
    ) -> None: ...

    def epoch(self, run_id: str, epoch: int, metrics: dict[str, float]) -> None: ...

    def checkpoint(
        self, run_id: str, step: int, epoch: int, *, path: Path, sha256: str
    ) -> None: ...

    def status(self, run_id: str, status: RunStatus, **fields: Any) -> None: ...

    def get(self, run_id: str) -> RunRecord: ...

    def list(self, project: str | None = None, limit: int = 100) -> list[RunRecord]: ...


class RunStore:
    """Runs, their per-epoch metrics and checkpoints. Implements ``RunRecorder``."""

    def __init__(self, engine: Engine, clock: Clock = utc_now) -> None:
        self.engine = engine
        self.clock = clock

    def create(
        self,
        run_id: str,
        project: str,
        params: dict[str, Any],
        *,
        dataset_sha256: str,
        run_dir: Path,
        world_size: int = 1,
    ) -> None:
        now = self.clock()
        row = RunRow(
            id=run_id,
            project=project,
            status="running",
            created_at=now,
            updated_at=now,
            params=params,
            metrics={},
            dataset_sha256=dataset_sha256,
            run_dir=str(run_dir),
            world_size=world_size,
        )
        with Session(self.engine) as session, session.begin():
            session.add(row)

    # -- RunRecorder -----------------------------------------------------------------

    def epoch(self, run_id: str, epoch: int, metrics: dict[str, float]) -> None:
        with Session(self.engine) as session, session.begin():
            self._row(session, run_id)  # an unknown run is named, not a foreign-key error
            session.execute(
                delete(EpochRow).where(EpochRow.run_id == run_id, EpochRow.epoch == epoch)
            )
            session.add(EpochRow(run_id=run_id, epoch=epoch, metrics=metrics))
            self._touch(session, run_id)

    def checkpoint(self, run_id: str, step: int, epoch: int, *, path: Path, sha256: str) -> None:
        with Session(self.engine) as session, session.begin():
            self._row(session, run_id)
            session.execute(
                delete(CheckpointRow).where(
                    CheckpointRow.run_id == run_id, CheckpointRow.step == step
                )
            )
            session.add(
                CheckpointRow(
                    run_id=run_id,
                    step=step,
                    epoch=epoch,
                    path=str(path),
                    sha256=sha256,
                    created_at=self.clock(),
                )
            )
            self._touch(session, run_id)

    def status(self, run_id: str, status: RunStatus, **fields: Any) -> None:
        """Set the status and any of ``metrics``, ``weights_sha256``, ``error``."""
        with Session(self.engine) as session, session.begin():
            row = self._row(session, run_id)
            row.status = status
            for name in ("metrics", "weights_sha256", "error"):
                if name in fields:
                    setattr(row, name, fields[name])
            row.updated_at = self.clock()
            row.ended_at = None if status == "running" else row.updated_at

    # -- queries ---------------------------------------------------------------------

    def get(self, run_id: str) -> RunRecord:
        with Session(self.engine) as session:
            row = self._row(session, run_id)
            epochs = session.scalars(
                select(EpochRow).where(EpochRow.run_id == run_id).order_by(EpochRow.epoch)
            ).all()
            checkpoints = session.scalars(
                select(CheckpointRow)
                .where(CheckpointRow.run_id == run_id)
                .order_by(CheckpointRow.step)
            ).all()
            return _entity(
                row,
                [dict(e.metrics) for e in epochs],
                [
                    {"step": c.step, "epoch": c.epoch, "path": c.path, "sha256": c.sha256}
                    for c in checkpoints
                ],
            )

    def list(self, project: str | None = None, limit: int = 100) -> list[RunRecord]:
        """Newest first."""
        query = select(RunRow).order_by(RunRow.created_at.desc(), RunRow.id.desc()).limit(limit)
        if project is not None:
            query = query.where(RunRow.project == project)
        with Session(self.engine) as session:
            return [_entity(row, [], []) for row in session.scalars(query).all()]

    def _row(self, session: Session, run_id: str) -> RunRow:
        row = session.get(RunRow, run_id)
        if row is None:
            raise RunNotFound(
                f"no run {run_id!r} in the metadata store; list runs with: dnnops runs list"
            )
        return row

    def _touch(self, session: Session, run_id: str) -> None:
        self._row(session, run_id).updated_at = self.clock()


def _entity(
    row: RunRow, epochs: list[dict[str, float]], checkpoints: list[dict[str, Any]]
) -> RunRecord:
    return RunRecord(
        id=row.id,
        project=row.project,
        status=row.status,
        created_at=iso_utc(row.created_at) or "",
        updated_at=iso_utc(row.updated_at) or "",
        ended_at=iso_utc(row.ended_at),
        params=dict(row.params),
        metrics=dict(row.metrics or {}),
        dataset_sha256=row.dataset_sha256,
        weights_sha256=row.weights_sha256,
        run_dir=row.run_dir,
        world_size=row.world_size,
        error=row.error,
        epochs=epochs,
        checkpoints=checkpoints,
    )
