"""Everything with I/O: SMTP server, MIME extraction, forwarding, storage, logs and the CLI."""
