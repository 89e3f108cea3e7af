"""The options of a ``type = "slack"`` notifier, checked before anything runs."""

from __future__ import annotations

import re
from dataclasses import dataclass

from flamewatch import Secret

DEFAULT_BASE_URL = "https://slack.com/api/"


@dataclass(frozen=True)
class SlackOptions:
    """Options of a ``type = "slack"`` notifier: exactly one of ``webhook_url`` or ``token`` + ``channel``."""

    webhook_url: Secret | None = None  # incoming webhook mode: the URL is a secret
    token: Secret | None = None  # bot token mode (xoxb-..., scope chat:write)
    channel: str | None = None  # bot token mode: "#name" or a channel ID
    base_url: str = DEFAULT_BASE_URL
    live_count: bool = False  # bot mode: keep one message per story and edit it as the thread grows
    username: str | None = None
    icon_emoji: str | None = None
    unfurl_links: bool = False  # let Slack add link previews (links and media)

    def __post_init__(self) -> None:
        if self.webhook_url is not None and self.token is not None:
            raise ValueError("webhook_url: set either webhook_url or token (with channel), not both")
        if self.webhook_url is None and self.token is None:
            raise ValueError("token: set either token (with channel) or webhook_url")
        if self.token is not None and not (self.channel or "").strip():
            raise ValueError('channel: required with token (e.g. channel = "#hn" or a channel ID)')
        if self.channel is not None and re.search(r"\s", self.channel):
            # Slack channel names and IDs never contain spaces; the API would refuse every post.
            raise ValueError(f"channel: {self.channel!r} contains a space; use the channel's name "
                             "(#hn-alerts) or its ID (C0123456789)")
        if self.webhook_url is not None and self.channel is not None:
            raise ValueError("channel: an incoming webhook posts to the channel it was created for; remove channel")
        if self.webhook_url is not None and self.live_count:
            raise ValueError("live_count: needs bot token mode (token + channel); webhook messages cannot be edited")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url: must be an http(s) URL, got {self.base_url!r}")
        if not self.base_url.endswith("/"):
            # slack-sdk joins method names onto it: without the slash, ".../api" + "chat.postMessage"
            # would lose the "api" part.
            raise ValueError(f"base_url: must end with '/', e.g. {self.base_url + '/'!r}")
        if self.icon_emoji is not None and not re.fullmatch(r":[a-z0-9_+'-]+:", self.icon_emoji):
            raise ValueError(f"icon_emoji: must look like :emoji_name:, got {self.icon_emoji!r}")
