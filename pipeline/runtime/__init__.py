"""The shared runtime layer below every stage: clock, retry policy, rate limiter, dispatcher and
HTTP helpers."""
