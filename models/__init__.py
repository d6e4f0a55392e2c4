"""Data shapes shared by rules and gateway: config, findings, verdicts, register and audit records."""
