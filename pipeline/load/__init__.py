"""The load stage: pacing, retrying and posting invoices to AppZen (clock, ratelimit, retry)."""
