"""`RestateEventSummarizer`: ADK's event compaction, its summarising model call a journaled step."""

from __future__ import annotations

import typing
from datetime import timedelta

from google.adk.apps.base_events_summarizer import BaseEventsSummarizer
from google.adk.apps.llm_event_summarizer import LlmEventSummarizer
from google.adk.events.event import Event
from google.adk.models.base_llm import BaseLlm

from restate_pg.api.retry import RunOptions
from restate_pg.runtime.current import current_context


class RestateEventSummarizer(BaseEventsSummarizer):
    """Wraps a summarizer so that its summary is journaled ("compaction LLM call") and replayed.
    Build one with `from_llm(llm)` (ADK's LLM summarizer) or `from_summarizer(summarizer)`."""

    def __init__(self, inner: BaseEventsSummarizer, max_retries: int = 10) -> None:
        self._inner = inner
        self._max_retries = max_retries

    @staticmethod
    def from_llm(llm: BaseLlm, prompt_template: typing.Optional[str] = None,
                 max_retries: int = 10) -> RestateEventSummarizer:
        return RestateEventSummarizer(LlmEventSummarizer(llm=llm, prompt_template=prompt_template),
                                      max_retries=max_retries)

    @staticmethod
    def from_summarizer(summarizer: BaseEventsSummarizer, max_retries: int = 10) -> RestateEventSummarizer:
        return RestateEventSummarizer(summarizer, max_retries=max_retries)

    async def maybe_summarize_events(self, *, events: typing.List[Event]) -> typing.Optional[Event]:
        if not events:
            return None
        ctx = current_context()
        if ctx is None:
            raise RuntimeError("No Restate context found: RestateEventSummarizer must be used inside a "
                               "restate-pg handler.")
        inner = self._inner

        async def summarize() -> typing.Optional[Event]:
            return await inner.maybe_summarize_events(events=events)

        options: RunOptions[typing.Optional[Event]] = RunOptions(
            max_attempts=self._max_retries, initial_retry_interval=timedelta(seconds=1))
        return await ctx.run_typed("compaction LLM call", summarize, options)
