"""Mail: messages (message.py), the outbox queue that stores, claims and delivers them (outbox.py),
and the transports (smtp.py, files.py: .eml files)."""

from __future__ import annotations

from paperdigest.config import Settings, smtp_password
from paperdigest.mail.files import FileTransport, outbox_folder
from paperdigest.mail.smtp import SmtpOptions, SmtpTransport
from paperdigest.mail.transport import Transport


def transport_for(settings: Settings) -> Transport:
    """The configured transport: .eml files in the outbox folder, or SMTP."""
    mail = settings.mail
    if mail.transport == "file":
        return FileTransport(outbox_folder(settings))
    options = SmtpOptions(
        host=mail.host,
        port=mail.port,
        security=mail.security,
        username=mail.username,
        password=smtp_password(mail),
        timeout=mail.timeout,
        ca_file=mail.ca_file,
    )
    return SmtpTransport(options)
