"""Status-sync: tell AppZen what the ERP did with each invoice (posted, paid, or its error)."""
