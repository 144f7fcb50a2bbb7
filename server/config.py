"""Service settings, read from `.env` and the environment (the environment wins)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def usable_cores() -> int:
    """The cores this process may run on (a container's cpuset, taskset), not the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


class Settings(BaseSettings):
    """Everything the operator can configure; each field documents its rule."""

    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", use_attribute_docstrings=True
    )

    models_path: Path = Path("saved_models")
    """Directory that holds trained models (created if missing)."""
    training_cores: int = Field(default_factory=lambda: max(2, usable_cores()), ge=2)
    """Cores given to the service; TRAINING_CORES - 1 trainings run at once (default: the
    cores this process may use, at least 2)."""
    max_inference_models: int = Field(default=2, ge=1)
    """How many models may be loaded at once."""
    max_body_mb: float = Field(default=512.0, gt=0)
    """Largest accepted request body, in MiB."""
    warm_workers: bool = True
    """Start the training processes at start-up, so a first fit pays no imports."""
    max_batch_rows: int = Field(default=1024, ge=1)
    """Most rows merged into one predict call."""
    batch_window_ms: float = Field(default=0.0, ge=0)
    """Under load, how long a batch waits for more requests (a lone one never waits)."""
    inference_runtime: Literal["auto", "native"] = "auto"
    """`auto`: models are compiled to ONNX when trained and served by ONNX Runtime when the check at
    load passes; `native`: every model is served by its estimator."""
    gc_freeze: bool = True
    """After start-up, move every object imported so far out of the garbage collector's sight
    (gc.freeze): full collections stop pausing the server."""
    inline_predict_ms: float = Field(default=0.2, ge=0)
    """Predictions estimated below this run on the event loop, without a thread hop."""
    pin_training_cores: bool = True
    """Linux: keep the lowest allowed core for the server and pin trainings to the others (with two
    or more cores allowed)."""
    training_nice: int | None = Field(default=None, ge=0, le=19)
    """How much lower the training processes' CPU priority is than the server's (unset: 0 when
    trainings have cores of their own, 10 when they share the server's)."""
    training_idle_priority: bool = False
    """Linux: training processes get only CPU time nobody else wants (SCHED_IDLE). Off by default:
    on a host with other busy processes it starves trainings completely."""
    max_train_seconds: float = Field(default=0.0, ge=0)
    """A training running longer is stopped (0: no limit)."""
    max_train_memory_mb: float = Field(default=0.0, ge=0)
    """A training process whose resident memory grows past this is stopped (0: none)."""
    job_history: int = Field(default=100, ge=100)
    """How many finished jobs GET /jobs keeps (in memory)."""
    # SecretStr: a token never shows in a repr, a traceback or a validation error.
    management_token: SecretStr | None = None
    """Bearer token for every guarded endpoint (unset: open)."""
    inference_token: SecretStr | None = None
    """Bearer token for predict and the read-only endpoints."""
    model_signing_key: SecretStr | None = None
    """The secret (32 characters or more) that signs model files; unset: the key in
    MODEL_SIGNING_KEY_FILE."""
    model_signing_key_file: Path = Path("keys/model-signing.key")
    """The signing key's file, created (mode 0600) on first start if missing; never inside
    MODELS_PATH."""
    estimator_loading: Literal["lazy", "eager"] = "lazy"
    """`lazy`: a model served by its compiled copy reads its estimator only when a batch needs it;
    `eager`: /load reads both."""
    training_backend: Literal["local", "dask"] = "local"
    """`local`: worker processes of this server; `dask`: the workers of a Dask cluster."""
    dask_scheduler_address: str | None = None
    """The Dask scheduler, e.g. tcp://scheduler:8786 (with dask)."""
    dask_connect_seconds: float = Field(default=30.0, gt=0)
    """At start-up, how long to wait for the Dask scheduler to accept connections."""
    metrics: bool = True
    """Serve GET /metrics and count requests."""
    access_log: Literal["text", "json", "off"] = "text"
    """One line per request: text, JSON lines, or off."""
    serving_role: Literal["primary", "replica"] = "primary"
    """`primary`: trains, writes the store and keeps in it the set of versions it serves;
    `replica`: serves only, following that set (every writing call answers 409)."""
    primary_url: str | None = None
    """Where writing calls go (a replica's 409 names it), e.g. http://primary:8000."""
    replica_sync_seconds: float = Field(default=1.0, gt=0, le=60)
    """A replica serves every move of the primary within this many seconds."""

    @field_validator(
        "management_token", "inference_token", "model_signing_key", "primary_url", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        """`MANAGEMENT_TOKEN=` in .env (as compose passes it through) means unset."""
        return None if value in ("", None) else value

    max_event_streams: int = Field(default=100, ge=1)
    """Event streams open at once (jobs, searches, dashboards); 503 beyond."""
    max_predict_rows: int = Field(default=1_000_000, ge=1)
    """Most rows in one /predict or /evaluate request (413 beyond)."""
    max_fit_rows: int = Field(default=10_000_000, ge=1)
    """Most rows in one /fit or /automl (413 beyond)."""
    max_explain_rows: int = Field(default=1000, ge=1)
    """Most rows in one /explain request (413 beyond)."""
    max_explain_values: int = Field(default=1_000_000, ge=1)
    """Most numbers in one /explain answer, rows x outputs x features (413 beyond): an
    answer's size, about 20 bytes a number."""
    max_explain_queue: int = Field(default=4, ge=1)
    """Explanations running or waiting their turn at once (503 with Retry-After beyond)."""
    explain_timeout_seconds: float = Field(default=60.0, gt=0)
    """An explanation still computing after this long is stopped (503) and its process
    replaced."""
    max_columns: int = Field(default=10_000, ge=1)
    """Most columns in one request's table (413 beyond)."""
    max_categories: int = Field(default=1000, ge=1)
    """Most levels of one categorical column in a fit's training rows (422 beyond: most often
    an identifier, which `ignore_columns` leaves out)."""
    allowed_origins: str = ""
    """Comma-separated origins (https://app.example) whose web pages may make writing calls; a page
    of any other site is refused."""
    allowed_hosts: str = "localhost,127.0.0.1,::1"
    """With no token set, the host names a writing call may be addressed to (against DNS
    rebinding); * for any."""
    header_timeout_seconds: float = Field(default=10.0, gt=0)
    """A request whose headers take longer is closed (408)."""
    body_timeout_seconds: float = Field(default=60.0, gt=0)
    """A request body that stops arriving for this long is dropped (408)."""
    retry_after_seconds: int = Field(default=5, ge=1)
    """The Retry-After header of a 503 (no free training slot)."""

    monitoring_path: Path | None = None
    """Where captured rows, labels and drop counts are written (unset: `monitoring` beside
    MODELS_PATH); never inside MODELS_PATH. Captured rows are users' data: see Monitoring."""
    capture_queue_rows: int = Field(default=100_000, ge=1)
    """Captured rows waiting for the writer; rows beyond are dropped and counted."""
    capture_queue_mb: float = Field(default=256.0, gt=0)
    """What captured requests waiting for the writer may hold in memory; beyond, dropped and
    counted (a few large requests fill it before CAPTURE_QUEUE_ROWS does)."""
    capture_retention_days: float = Field(default=30.0, gt=0)
    """Captured rows and labels older than this are deleted."""
    capture_flush_seconds: float = Field(default=2.0, gt=0, le=300)
    """How long a captured row waits, at most, before it is in a file (and in the report)."""
    replica_name: str | None = None
    """This server's folder under MONITORING_PATH (unset: `primary` for a primary, the host
    name for a replica)."""

    @model_validator(mode="after")
    def _monitoring_outside_models(self) -> Settings:
        models = self.models_path.resolve()
        if models == self.capture_root.resolve() or models in self.capture_root.resolve().parents:
            raise ValueError("MONITORING_PATH must not be inside MODELS_PATH")
        return self

    @property
    def capture_root(self) -> Path:
        return self.monitoring_path or self.models_path.resolve().parent / "monitoring"

    @model_validator(mode="after")
    def _dask_needs_a_scheduler(self) -> Settings:
        if self.training_backend == "dask" and not self.dask_scheduler_address:
            raise ValueError("TRAINING_BACKEND=dask needs DASK_SCHEDULER_ADDRESS")
        return self

    @property
    def training_slots(self) -> int:
        """One core always stays with the server, which also runs inference."""
        return self.training_cores - 1

    @property
    def is_replica(self) -> bool:
        return self.serving_role == "replica"

    @property
    def signing_secret(self) -> str | None:
        secret = self.model_signing_key
        return secret.get_secret_value() if secret is not None else None

    @property
    def origins(self) -> list[str]:
        return [origin.strip() for origin in self.allowed_origins.split(",") if origin.strip()]

    @property
    def hosts(self) -> list[str] | None:
        """None: any host (`*`)."""
        names = [host.strip().strip("[]") for host in self.allowed_hosts.split(",")]
        return None if "*" in names else [name for name in names if name]

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)


def describe_error(error: ValidationError) -> str:
    """One line that names each bad variable and the rule it breaks."""
    parts = []
    for item in error.errors():
        variable = "_".join(str(part) for part in item["loc"]).upper() or "settings"
        parts.append(f"{variable}={item.get('input')!r}: {item['msg']}")
    return "invalid configuration: " + "; ".join(parts)


def load_settings() -> Settings:
    """Read the settings, or stop the process with one clear line."""
    try:
        return Settings()
    except ValidationError as error:
        print(describe_error(error), file=sys.stderr)
        raise SystemExit(2) from None
