"""The milter door: brukarvakt inside Postfix (smtpd_milters) or Sendmail, by the milter protocol."""
