"""A conversation with a model: a system prompt, the turns so far, and fitting them into the context window.

Plain Python: this module never imports bpy.

Token counts are *estimated*, not counted: the real tokenizer depends on the model behind the proxy and is not
available offline. The estimate is one token per 4 UTF-8 bytes of text, rounded up (English averages about 4
characters a token; counting bytes rather than characters makes accented and CJK text cost more, as it does in real
tokenizers), plus 4 tokens per message for its role and framing and 3 for the reply's priming. It errs on the high
side, so a trimmed conversation fits a real window. A request fits when prompt estimate + ``max_tokens`` (room for
the answer) <= the model's context window.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ...runtime.errors import InvalidRequestError

BYTES_PER_TOKEN = 4
MESSAGE_OVERHEAD = 4
REPLY_PRIMING = 3
ROLES = frozenset({"system", "user", "assistant", "developer", "tool"})


def estimate_tokens(text: str) -> int:
    """Estimated tokens of ``text`` alone (see the module docstring)."""
    return -(-len(text.encode("utf-8")) // BYTES_PER_TOKEN)


def message_tokens(message: Mapping[str, Any]) -> int:
    content = message.get("content") or ""
    return MESSAGE_OVERHEAD + estimate_tokens(content if isinstance(content, str) else str(content))


@dataclass
class Conversation:
    """The system prompt is kept apart from the history so that trimming can never drop it."""

    system: str = ""
    history: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def from_messages(cls, messages: Iterable[Mapping[str, Any]] | str, system: str = "") -> Conversation:
        """From OpenAI-style messages (system messages are joined into the system prompt) or a single user prompt."""
        if isinstance(messages, str):
            return cls(system=system, history=[{"role": "user", "content": messages}])
        systems = [system] if system else []
        history: list[dict[str, str]] = []
        for msg in messages:
            if not isinstance(msg, Mapping):
                raise InvalidRequestError("Each chat message must be a mapping with a role and a content")
            role, content = msg.get("role"), msg.get("content")
            if role not in ROLES or not isinstance(content, str):
                raise InvalidRequestError(
                    f"A chat message needs a role ({', '.join(sorted(ROLES))}) and a text content, not {role!r}"
                )
            if role == "system":
                systems.append(content)
            else:
                history.append({"role": str(role), "content": content})
        return cls(system="\n\n".join(systems), history=history)

    def add(self, role: str, content: str) -> Conversation:
        if role not in ROLES or role == "system":
            raise InvalidRequestError(f"Cannot add a turn with role {role!r}")
        self.history.append({"role": role, "content": content})
        return self

    def user(self, content: str) -> Conversation:
        return self.add("user", content)

    def assistant(self, content: str) -> Conversation:
        return self.add("assistant", content)

    def messages(self) -> list[dict[str, str]]:
        """The OpenAI ``messages`` list."""
        head = [{"role": "system", "content": self.system}] if self.system else []
        return head + [dict(m) for m in self.history]

    def estimate(self) -> int:
        """Estimated prompt tokens of the whole conversation."""
        return sum(message_tokens(m) for m in self.messages()) + REPLY_PRIMING

    def trimmed(self, budget_tokens: int) -> Conversation:
        """A copy that fits ``budget_tokens``: the oldest turns go first, the system prompt never.

        A history never starts with an answer, so an assistant turn left first is dropped with the question it
        answered. The newest message always stays: if it alone (with the system prompt) is too long, the request is
        refused rather than sent without it.
        """
        fixed = REPLY_PRIMING + (message_tokens({"content": self.system}) if self.system else 0)
        costs = [message_tokens(m) for m in self.history]
        total = fixed + sum(costs)
        start = 0
        while total > budget_tokens and start < len(self.history) - 1:
            total -= costs[start]
            start += 1
            while start < len(self.history) - 1 and self.history[start]["role"] == "assistant":
                total -= costs[start]
                start += 1
        if total > budget_tokens:
            raise InvalidRequestError(
                f"The prompt is too long for the model: about {total} tokens where {max(budget_tokens, 0)} fit",
                hint="Shorten the prompt or the system prompt, lower the answer length, or raise the context window.",
                details={"estimated_tokens": total, "budget_tokens": budget_tokens},
            )
        return Conversation(system=self.system, history=[dict(m) for m in self.history[start:]])

    def fit(self, context_window: int, max_tokens: int) -> Conversation:
        """Trimmed so that the prompt estimate plus ``max_tokens`` of answer fit ``context_window``."""
        if max_tokens >= context_window:
            raise InvalidRequestError(
                f"The answer length ({max_tokens} tokens) leaves no room for the prompt in a "
                f"{context_window}-token context window",
                hint="Lower the answer length or raise the context window.",
            )
        return self.trimmed(context_window - max_tokens)
