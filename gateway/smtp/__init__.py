"""The SMTP door: the aiosmtpd protocol, SMTP AUTH and upstream trust."""
