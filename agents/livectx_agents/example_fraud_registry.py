"""Following the model registry: the fraud agent decides with a name's active version, swapped live.

Apart from the agent (:mod:`.example_fraud`) because following is a policy over the agent's
:meth:`~livectx_agents.example_fraud.FraudAgent.use`: which scorer to switch to, and when to refuse one.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from livectx.errors import LivectxError
from livectx.models import ModelVersion
from livectx.settings import Settings
from livectx_agents.example_fraud_scoring import CardTestingRules, ModelScorer

if TYPE_CHECKING:
    from livectx_agents.example_fraud import FraudAgent

log = logging.getLogger(__name__)


class RegistryFollower:
    """Keeps an agent on the active version of one registered model name; the rules when there is none.

    Called by :meth:`RegistryView.follow` with the active version at start and on every change. A version
    whose artifact cannot be used (altered, unreadable) is refused with an error in the log and the agent
    keeps deciding with what it had: a bad registration must not stop payments from being decided."""

    def __init__(self, settings: Settings, agent: FraudAgent, name: str) -> None:
        self.settings = settings
        self.agent = agent
        self.name = name
        self._followed: str | None = None

    def __call__(self, version: ModelVersion | None) -> None:
        if version is None:
            why = (
                f"model {self.name} retired in the registry: falling back to the card-testing rules"
                if self._followed
                else f"no active version of model {self.name} in the registry: the card-testing rules decide"
            )
            self._followed = None
            self.agent.use(CardTestingRules(), why)
            return
        try:
            scorer = ModelScorer.from_version(self.settings, version)
        except LivectxError as exc:
            log.error(
                "fraud agent: cannot use %s (%s); still deciding with %s", version.ref, exc, self.agent.scorer.name
            )
            return
        previous, self._followed = self._followed, version.ref
        self.agent.use(scorer, f"switched from {previous} to {version.ref}" if previous else f"using {version.ref}")
