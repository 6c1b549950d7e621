-- Tenants are walls: sender subdomains by choice, and what each relay host resolved to.

-- include_subdomains: whether the subdomains of the domain may send too (envelope sender and header From).
-- Off for every domain registered before this version, as for new ones: until now any subdomain could send.
ALTER TABLE customer_domains ADD COLUMN include_subdomains INTEGER NOT NULL DEFAULT 0;

-- What the access table made of each relay host at its last reload that changed it (JSON, the API's
-- RelayHost addresses and resolve error; '' before the first reload), and when (NULL: never).
ALTER TABLE relay_hosts ADD COLUMN resolved TEXT NOT NULL DEFAULT '';
ALTER TABLE relay_hosts ADD COLUMN resolved_at BIGINT;
