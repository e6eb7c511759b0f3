DROP TABLE imap_leases;
