"""The base every settings section shares, kept apart so each section's module can import it alone.

A section is one concern's frozen model, strict about unknown keys, whose environment variables beat the
config file's table: :mod:`livectx.settings` passes that table as init keywords, so the order of the
sources, not pydantic-settings' default, decides precedence.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


def xdg(var: str, fallback: str) -> Path:
    """An XDG base directory (``XDG_STATE_HOME``, ...), else its conventional place under the home dir."""
    return Path(os.environ.get(var) or Path.home() / fallback)


class Section(BaseSettings):
    """Base for one concern: frozen, strict about unknown keys, environment beats the config file."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # init kwargs carry the config file's table: the environment must win over it.
        return env_settings, init_settings, file_secret_settings
