"""The options of a ``type = "telegram"`` notifier, checked before anything runs."""

from __future__ import annotations

import re
from dataclasses import dataclass

from flamewatch import Secret

DEFAULT_API_URL = "https://api.telegram.org"

#: A public chat's @username: 5-32 letters, digits and underscores (Telegram's rule).
_USERNAME = re.compile(r"@[A-Za-z][A-Za-z0-9_]{3,31}")


@dataclass(frozen=True)
class TelegramOptions:
    """Options of a ``type = "telegram"`` notifier.

    ``chat_id`` is a number (a user, or ``-100...`` for a group or channel) or a public ``@username``;
    ``message_thread_id`` picks a topic in a forum supergroup. ``live_count`` keeps one message per story
    and edits it as the thread grows (``editMessageText``) instead of posting again.
    """

    token: Secret  # the bot token from @BotFather: it sits in every request's URL, so it is a secret
    chat_id: int | str
    message_thread_id: int | None = None
    live_count: bool = False
    silent: bool = False  # disable_notification: the message arrives without a sound
    link_preview: bool = False
    api_url: str = DEFAULT_API_URL

    def __post_init__(self) -> None:
        chat = self.chat_id
        if isinstance(chat, str) and not (_USERNAME.fullmatch(chat) or re.fullmatch(r"-?\d+", chat)):
            raise ValueError(f"chat_id: expected a number (-1001234567890) or a public @username, got {chat!r}")
        if self.message_thread_id is not None and self.message_thread_id <= 0:
            raise ValueError(f"message_thread_id: expected a positive topic id, got {self.message_thread_id}")
        if not self.api_url.startswith(("http://", "https://")):
            raise ValueError(f"api_url: must be an http(s) URL, got {self.api_url!r}")

    @property
    def chat(self) -> int | str:
        """``chat_id`` as the Bot API wants it: an int for numeric ids, else the @username."""
        if isinstance(self.chat_id, str) and re.fullmatch(r"-?\d+", self.chat_id):
            return int(self.chat_id)
        return self.chat_id

    @property
    def is_group(self) -> bool:
        """Whether the chat is a group or channel (negative id or @username): 20 messages a minute there."""
        chat = self.chat
        return isinstance(chat, str) or chat < 0
