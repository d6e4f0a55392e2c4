"""The compliance console: a web door onto the audit log, the quarantine and the register (`brukarvakt console`)."""
