"""Demo "application backend": its own users, one telephony credential each, a token endpoint."""
