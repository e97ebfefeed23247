"""Where the views live: ``SFERUM_AUDIT_VIEWS_URL``, or a default next to the event store.

Unset, the views go into ``<data_dir>/views.sqlite``; when the event store is PostgreSQL
(``SFERUM_AUDIT_DATABASE_URL``) they go into the same database and schema, through the
psycopg driver. The application's ``Settings`` does not know this variable, so the views
read it with their own small settings class (same prefix).
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from sferum_audit.application.settings import Settings


class ViewsSettings(BaseSettings):
    """The view-only settings, read from ``SFERUM_AUDIT_*`` like the rest."""

    model_config = SettingsConfigDict(env_prefix="SFERUM_AUDIT_", extra="ignore")

    views_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the views database; unset means views.sqlite in the "
        "data folder, or the event store's PostgreSQL database and schema.",
    )
    views_page_size: int = Field(
        default=2000, description="Events applied per view transaction while catching up."
    )
    views_poll_interval: float = Field(
        default=0.5, description="Seconds between polls of the log while following it."
    )


def sqlalchemy_postgres_url(url: str) -> str:
    """``postgresql://...`` as a SQLAlchemy URL that uses psycopg 3."""
    scheme, rest = url.split("://", 1)
    if scheme in {"postgresql", "postgres"}:
        return f"postgresql+psycopg://{rest}"
    return url


def views_location(
    settings: Settings, views: ViewsSettings | None = None
) -> tuple[str, str | None]:
    """The views database URL and the PostgreSQL schema to use (``None``: the default)."""
    views = views or ViewsSettings()
    if views.views_url:
        return sqlalchemy_postgres_url(views.views_url), None
    if settings.database_url:
        return sqlalchemy_postgres_url(settings.database_url), settings.database_schema
    return f"sqlite:///{settings.data_dir / 'views.sqlite'}", None
