"""Real local servers that stand in for Slack, SMTP and webhook receivers in tests."""
