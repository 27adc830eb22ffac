"""Who may call what: consumer connections (clients) and their permissions."""
