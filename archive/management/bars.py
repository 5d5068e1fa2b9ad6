"""Progress bars for services that report (phase, amount just done, phase total)."""

from __future__ import annotations

from types import TracebackType

from tqdm import tqdm


class PhaseBars:
    """One tqdm bar per phase, opened when the phase first reports and closed at the next."""

    def __init__(self, *, unit: str, scale: bool = False) -> None:
        self.unit, self.scale = unit, scale
        self.phase = ""
        self.bar: tqdm | None = None

    def __call__(self, phase: str, done: int, total: int) -> None:
        if phase != self.phase or self.bar is None:
            self.close()
            self.phase = phase
            self.bar = tqdm(
                total=total or None,
                desc=phase,
                unit=self.unit,
                unit_scale=self.scale,
                unit_divisor=1024 if self.scale else 1000,
            )
        self.bar.update(done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> PhaseBars:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
